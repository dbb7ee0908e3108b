/**
 * A throwaway PKI made with openssl for the TLS tests: a CA and certificates it signs (or
 * self-signed ones), P-256 keys written with mode 0600.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class TestPki {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=tallenne test CA', '-days', '2');
    chmodSync(this.path('ca.key'), 0o600);
  }

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  file(name: string): Buffer {
    return readFileSync(this.path(name));
  }

  /** `name.key` and `name.crt` for `cn` with subjectAltName `san`, signed by the CA (or by itself). */
  issue(name: string, cn: string, san: string, selfSigned = false): void {
    this.openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(this.path(`${name}.ext`), `subjectAltName=${san}\n`);
    const signer = selfSigned ? ['-signkey', `${name}.key`] : ['-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'];
    this.openssl('x509', '-req', '-in', `${name}.csr`, ...signer, '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
    chmodSync(this.path(`${name}.key`), 0o600);
  }

  /** Copies `from`'s certificate and key over `to`'s (the key kept 0600): a renewal in place. */
  install(from: string, to: string): void {
    copyFileSync(this.path(`${from}.crt`), this.path(`${to}.crt`));
    copyFileSync(this.path(`${from}.key`), this.path(`${to}.key`));
    chmodSync(this.path(`${to}.key`), 0o600);
  }

  /** TLS client options: trust the CA and, when named, present that certificate. */
  client(name?: string): { ca: Buffer; cert?: Buffer; key?: Buffer } {
    return { ca: this.file('ca.crt'), ...(name ? { cert: this.file(`${name}.crt`), key: this.file(`${name}.key`) } : {}) };
  }
}
