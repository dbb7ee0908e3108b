/**
 * The HTTP listeners: [http] listen serves /metrics, /healthz, /readyz, the recordings API
 * (/api/v1) and the web page (/); the optional [metrics] listen serves /metrics alone.
 * Builds the API's parts (sessions, authentication, audit, peaks, single sign-on) from the
 * daemon's components, so the composition root only hands those over.
 */
import type { FastifyInstance } from 'fastify';
import type { Config, HostPort } from '../config/schema.js';
import type { RecordingIndex } from '../index/index.js';
import type { Logger } from '../log.js';
import type { NumberHasher } from '../privacy/numbers.js';
import type { AudioStore } from '../storage/audio-store.js';
import type { Metrics } from './metrics.js';
import type { LiveCalls } from '../calls/live.js';
import { ApiAudit } from './audit.js';
import { Authenticator } from './auth/authenticate.js';
import { OidcClient } from './auth/oidc.js';
import { SessionStore } from './auth/session.js';
import { PeakCache } from './peaks.js';
import { ListenTracker, type LiveListens } from './listens.js';
import { buildMetricsServer, buildServer, type ServerDeps } from './server.js';
import { HttpsGuard } from './https.js';
import type { TlsMaterial } from '../tls/material.js';

export interface HttpDeps {
  readonly config: () => Config;
  readonly index: RecordingIndex;
  readonly store: AudioStore;
  readonly hasher: NumberHasher;
  readonly metrics: Metrics;
  readonly ready: () => Promise<{ ready: boolean; checks: Record<string, string> }>;
  readonly log: Logger;
  readonly calls?: LiveCalls;
  readonly listen?: LiveListens;
  readonly now?: () => number;
}

/** The API's parts, built from the daemon's components. */
export function apiDeps(d: HttpDeps): ServerDeps {
  const now = d.now ?? Date.now;
  const sessions = new SessionStore({ now });
  const audit = new ApiAudit(d.index.audit, now);
  const auth = new Authenticator({ users: d.index.users, sessions, agents: () => d.config().agents, audit, failureLimit: () => d.config().api.login_rate_limit, now });
  const oidcConfig = d.config().auth.oidc;
  const oidc = oidcConfig ? OidcClient.fromConfig(oidcConfig, d.log.child({ component: 'oidc' })) : undefined;
  return { ...d, now, sessions, audit, auth, peaks: new PeakCache(), listens: new ListenTracker(d.metrics.registry), ...(oidc ? { oidc } : {}) };
}

export class HttpApi {
  private servers: FastifyInstance[] = [];
  private main: FastifyInstance | undefined;
  private readonly guard: HttpsGuard;
  readonly deps: ServerDeps;

  constructor(deps: HttpDeps) {
    this.deps = apiDeps(deps);
    this.guard = new HttpsGuard(deps.metrics.registry, () => deps.config().http.tls);
  }

  /** Opens the listeners; the main one over HTTPS when `tls` (from [tls] or [http.tls]) is given. */
  async listen(http: HostPort, metrics?: HostPort, tls?: TlsMaterial): Promise<{ http: HostPort; metrics?: HostPort }> {
    this.deps.oidc?.start();
    this.main = await buildServer(this.deps, tls ? { guard: this.guard, material: tls } : undefined);
    const main = await this.serve(this.main, http);
    if (!metrics) return { http: main };
    const m = await this.serve(await buildMetricsServer(this.deps), metrics);
    return { http: main, metrics: m };
  }

  private async serve(app: FastifyInstance, at: HostPort): Promise<HostPort> {
    this.servers.push(app);
    await app.listen({ port: at.port, host: at.address });
    app.server.keepAliveTimeout = 5000;
    const a = app.server.address();
    return a && typeof a === 'object' ? { address: a.address, port: a.port } : at;
  }

  /** A new certificate, key and CA for HTTPS connections made from now on. */
  reloadTls(material: TlsMaterial): void {
    if (this.main) this.guard.reload(this.main, material);
  }

  async close(): Promise<void> {
    const servers = this.servers;
    this.servers = [];
    await Promise.all(servers.map((s) => s.close()));
    this.deps.oidc?.close();
  }
}
