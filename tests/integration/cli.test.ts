/** The `tallenne` command as operators run it: exit codes and output of check-config. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from '../support/daemon.js';
import { tempDir } from '../support/cleanup.js';

function tallenne(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('tallenne CLI', () => {
  it('check-config prints the effective config of the embedded default and exits 0', () => {
    const r = tallenne('check-config');
    expect(r.code).toBe(0);
    const c = JSON.parse(r.out) as Record<string, Record<string, unknown>>;
    expect(c.sip!.listen).toEqual(['udp:127.0.0.1:5060', 'tcp:127.0.0.1:5060']);
    expect(c.rtp).toMatchObject({ address: '127.0.0.1', port_min: 20000, port_max: 29999, inactivity_timeout: '60s' });
    expect(c.retention).toMatchObject({ audio: '6 months', metadata: '3 years 3 months', purge_interval: '1h' });
  });

  it('check-config lists every error with its key path and exits 2', () => {
    const dir = tempDir('cli');
    try {
      const f = join(dir, 'bad.toml');
      writeFileSync(f, '[sip]\nlisten = ["udp:nowhere"]\n[rtp]\nport_min = 70000\n[storage]\nsize = 1\n');
      const r = tallenne('check-config', '--config', f);
      expect(r.code).toBe(2);
      expect(r.err).toContain('3 error(s)');
      expect(r.err).toMatch(/sip\.listen\[0\]/);
      expect(r.err).toMatch(/rtp\.port_min/);
      expect(r.err).toMatch(/storage: unknown key\(s\) "size"/);
      const missing = tallenne('check-config', '--config', join(dir, 'nope.toml'));
      expect(missing.code).toBe(2);
      expect(missing.err).toMatch(/nope\.toml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown command with usage and exit 2; prints its version', () => {
    const r = tallenne('frobnicate');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command "frobnicate"/);
    expect(r.err).toMatch(/usage: tallenne/);
    const v = tallenne('version');
    expect(v.code).toBe(0);
    expect(v.out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
