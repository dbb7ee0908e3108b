/**
 * The HTTP listener: /metrics, /healthz (the process is alive), /readyz (ready to record,
 * with the reason for each check). The recordings API with roles builds on this server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { HostPort } from '../config/schema.js';
import type { Metrics } from './metrics.js';

export interface HttpDeps {
  readonly metrics: Metrics;
  readonly ready: () => { ready: boolean; checks: Record<string, string> };
  readonly log: Logger;
}

export class HttpApi {
  private servers: Server[] = [];

  constructor(private readonly deps: HttpDeps) {}

  async listen(http: HostPort, metrics?: HostPort): Promise<{ http: HostPort; metrics?: HostPort }> {
    const main = await this.serve(http, (req, res) => this.route(req, res, true));
    if (!metrics) return { http: main };
    const m = await this.serve(metrics, (req, res) => this.route(req, res, false));
    return { http: main, metrics: m };
  }

  private serve(at: HostPort, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      const server = createServer((req, res) => {
        try {
          handler(req, res);
        } catch (e) {
          this.deps.log.error({ err: e }, 'HTTP handler failed');
          if (!res.headersSent) send(res, 500, 'internal error\n');
        }
      });
      server.keepAliveTimeout = 5000;
      server.once('error', reject);
      server.listen(at.port, at.address, () => {
        server.off('error', reject);
        this.servers.push(server);
        const a = server.address();
        resolve(a && typeof a === 'object' ? { address: a.address, port: a.port } : at);
      });
    });
  }

  private route(req: IncomingMessage, res: ServerResponse, full: boolean): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
    if (path === '/metrics') {
      this.deps.metrics.text().then(
        (text) => send(res, 200, text, { 'content-type': this.deps.metrics.contentType() }),
        (err) => {
          this.deps.log.error({ err }, 'collecting metrics failed');
          send(res, 500, 'metrics unavailable\n');
        },
      );
      return;
    }
    if (full && path === '/healthz') return send(res, 200, JSON.stringify({ status: 'alive' }) + '\n', { 'content-type': 'application/json' });
    if (full && path === '/readyz') {
      const r = this.deps.ready();
      return send(res, r.ready ? 200 : 503, JSON.stringify({ status: r.ready ? 'ready' : 'not ready', checks: r.checks }) + '\n', { 'content-type': 'application/json' });
    }
    send(res, 404, 'not found\n');
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => {
      s.close(() => r());
      s.closeAllConnections();
    })));
    this.servers = [];
  }
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}
