/**
 * HTTPS on the [http] listener (`[http.tls]`): the server options from the TLS material
 * (TLS 1.2 and later, a client certificate asked for under mutual TLS), the client name
 * check, counting refused handshakes, a new certificate on reload, and HSTS. The files are
 * read by src/tls/material.ts, the one loader shared with the SIP listeners.
 */
import type { Server as HttpsServer, ServerOptions as HttpsOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { HttpTlsConfig } from '../config/schema.js';
import { durationMs } from '../config/duration.js';
import { clientNameAllowed, secureContextOptions, serverOptions, type TlsMaterial } from '../tls/material.js';

/** Why an HTTPS connection was refused (the `reason` label). */
export type HttpsRefusal = 'tls_handshake' | 'client_name';

/** A TLS handshake not finished within this is dropped (and counted as a failed handshake). */
const HANDSHAKE_TIMEOUT_MS = 20_000;

export class HttpsGuard {
  private readonly refused: Counter<'reason'>;

  constructor(registry: Registry, private readonly config: () => HttpTlsConfig) {
    this.refused = new Counter({
      name: 'tallenne_http_connections_refused_total',
      help: 'HTTPS connections refused: tls_handshake (failed or timed out: no client certificate, an old protocol version, a CA we do not trust), client_name (not in http.tls.allowed_client_names).',
      labelNames: ['reason'],
      registers: [registry],
    });
    for (const reason of ['tls_handshake', 'client_name'] satisfies HttpsRefusal[]) this.refused.inc({ reason }, 0);
  }

  /** The options fastify creates its HTTPS server with. */
  options(material: TlsMaterial): HttpsOptions {
    return { ...serverOptions(material, this.config().require_client_certificate), handshakeTimeout: HANDSHAKE_TIMEOUT_MS };
  }

  /** Counts failed handshakes and closes connections whose certificate names no allowed peer. */
  attach(app: FastifyInstance): void {
    const server = app.server as unknown as HttpsServer;
    server.on('tlsClientError', () => this.refused.inc({ reason: 'tls_handshake' }));
    // Before the HTTP parser sees the connection: a refused peer never reaches a route.
    server.prependListener('secureConnection', (sock: TLSSocket) => {
      const c = this.config();
      if (c.require_client_certificate && !clientNameAllowed(sock.getPeerCertificate(), c.allowed_client_names)) {
        this.refused.inc({ reason: 'client_name' });
        sock.destroy();
      }
    });
    app.addHook('onSend', async (request, reply) => {
      const maxAge = Math.floor(durationMs(this.config().hsts_max_age) / 1000);
      if (request.protocol === 'https' && maxAge > 0) reply.header('strict-transport-security', `max-age=${maxAge}`);
    });
  }

  /** New certificate, key and CA for connections made from now on. */
  reload(app: FastifyInstance, material: TlsMaterial): void {
    (app.server as unknown as HttpsServer).setSecureContext(secureContextOptions(material));
  }
}
