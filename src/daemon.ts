/**
 * Composition root: builds every component from the config, wires them, and gives the
 * entry point start / close / destroy. Signals and exit codes stay in src/cli/main.ts.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import type { LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import type { Logger } from './log.js';
import { SipUserAgent } from './sip/user-agent.js';
import { SocketTransport } from './sip/socket-transport.js';
import { systemClock } from './sip/clock.js';
import { httpTlsSource, loadTlsMaterial, sipTlsSource, type TlsMaterial, type TlsSource } from './tls/material.js';
import { configKeyFileProblems, KeyFileError } from './secrets/key-file.js';
import { SourcePolicy } from './sip/source-policy.js';
import { RateLimiter } from './sip/rate-limit.js';
import { CallManager } from './calls/manager.js';
import { Finaliser } from './calls/finaliser.js';
import { spoolDirOf } from './spool/format.js';
import { LiveCalls } from './calls/live.js';
import { PortAllocator } from './rtp/ports.js';
import { openBatchReceive, type BatchReceiver } from './rtp/batch-receive.js';
import { rtpCounters } from './rtp/counters.js';
import { EncoderPool, encoderWorkerCount } from './encoder/pool.js';
import { opusBinding } from './encoder/opus-native.js';
import { threadCpuSource } from './encoder/cpu-time.js';
import type { RecordingIndex } from './index/index.js';
import { openRegister } from './index/open.js';
import { SpoolLeases } from './calls/spool-leases.js';
import { InviteClaims } from './calls/invite-claims.js';
import { NumberHasher } from './privacy/numbers.js';
import { openAudioStore, type OpenedStore } from './storage/open-store.js';
import type { AudioStore } from './storage/audio-store.js';
import { keyringFor } from './crypto/keyring.js';
import { Purger } from './retention/purge.js';
import { HttpApi } from './api/http.js';
import { Metrics } from './api/metrics.js';
import type { BoundListener } from './sip/transport.js';
import { durationMs } from './config/duration.js';
import { describeConfig, diffConfig } from './config/describe.js';
import { mergeReload } from './config/reload.js';
import { ConfigError } from './errors.js';
import { VERSION } from './version.js';

export interface DaemonInfo {
  readonly sip: BoundListener[];
  readonly http: { address: string; port: number };
  readonly metrics?: { address: string; port: number };
}

export class Daemon {
  private ua!: SipUserAgent;
  private sipTransport!: SocketTransport;
  private manager!: CallManager;
  private finaliser!: Finaliser;
  private encoder!: EncoderPool;
  private index!: RecordingIndex;
  private leases: SpoolLeases | undefined;
  private purger!: Purger;
  private http!: HttpApi;
  private metrics!: Metrics;
  private ports!: PortAllocator;
  private batch: BatchReceiver | null = null;
  private store!: AudioStore;
  private opened: OpenedStore | null = null;
  private closing: Promise<void> | null = null;
  private destroying: Promise<void> | null = null;
  private started = false;
  config: Config;

  constructor(loaded: LoadedConfig, private readonly log: Logger) {
    this.config = loaded.config;
  }

  async start(): Promise<DaemonInfo> {
    const c = this.config;
    // First, so a key file others can read, or a bad TLS file, stops the start before
    // anything is opened.
    const loose = configKeyFileProblems(c);
    if (loose.length > 0) throw new KeyFileError(loose);
    const tls = this.loadTls(c);
    const keyring = keyringFor(c.encryption, { create: true });
    if (keyring?.created) this.log.warn({ file: keyring.file, keyId: keyring.currentKeyId }, 'created the master key file (mode 0600); back it up apart from the recordings: without it no recording can be played');
    const storeLog = this.log.child({ component: 'storage' });
    this.opened = await openAudioStore(c, keyring, {
      onFailure: (key, err, attempt, retryInMs) => storeLog.error({ key, err: err.message, attempt, retryInMs }, 'uploading a recording failed; it waits in the outbox, its spool kept, and is tried again'),
    });
    this.store = this.opened.store;
    if (this.opened.outbox && this.opened.outbox.waiting > 0) storeLog.warn({ recordings: this.opened.outbox.waiting }, 'recordings left in the outbox by an earlier run; their spools are finalised again');
    const hasher = NumberHasher.open(c.privacy.hash_key_file);
    if (hasher.created) this.log.info({ file: c.privacy.hash_key_file }, 'created the number hash key (mode 0600); back it up: without it numbers cannot be looked up');
    const register = await openRegister(c, { onError: (err) => this.log.warn({ err }, 'the register dropped a connection; the pool opens another') });
    this.index = register.index;
    this.leases = new SpoolLeases(this.index, c.cluster.node_id, this.log.child({ component: 'calls' }));
    this.encoder = new EncoderPool({ workers: encoderWorkerCount(c.encoder.workers) });
    const opus = opusBinding();
    if (opus.fallbackReason) this.log.warn({ reason: opus.fallbackReason }, 'libopus runs through @discordjs/opus, which costs more memory per call: our own binding is not available');
    const clock = threadCpuSource();
    if (clock !== 'clock') this.log.warn({ clock }, clock === 'proc' ? "the encoders read their CPU time from /proc, which costs more per live call: the thread clock addon (native/thread-cpu) is not built" : "the encoders' CPU figures count the whole process: no thread clock is available");
    this.batch = openBatchReceive(c.rtp.receive, this.log.child({ component: 'rtp' }));
    this.ports = new PortAllocator({ address: c.rtp.address, min: c.rtp.port_min, max: c.rtp.port_max, receiveBuffer: c.rtp.receive_buffer, ...(this.batch ? { batch: this.batch } : {}), log: this.log.child({ component: 'rtp' }) });
    const spoolDir = spoolDirOf(c.storage.dir);
    mkdirSync(spoolDir, { recursive: true, mode: 0o750 });
    const config = () => this.config;
    this.manager = new CallManager({
      config,
      log: this.log.child({ component: 'calls' }),
      ports: this.ports,
      rtpCounters,
      store: this.store,
      hasher,
      spoolDir,
      ...(c.encryption.enabled && keyring ? { spoolKeys: keyring } : {}),
      // The user agent needs the manager first; it exists before any call can be hung up.
      hangUp: (dialogId) => this.ua?.hangUp(dialogId, 'local'),
      probe: (dialogId) => this.ua?.probe(dialogId),
      // Recorders sharing a register answer each INVITE once between them (src/calls/invite-claims.ts).
      ...(c.index.backend === 'postgres' ? { claims: new InviteClaims(this.index, c.cluster.node_id, this.log.child({ component: 'calls' })) } : {}),
    });
    this.finaliser = new Finaliser({
      config, log: this.log.child({ component: 'calls' }), encoder: this.encoder, index: this.index, store: this.store, spoolDir,
      keys: c.encryption.enabled ? keyring : null,
      // Spools are opened with any key file present, so those sealed before encryption was
      // turned off are still recovered; without one they wait (TALLENNE_SPOOL_KEY).
      ...(keyring ? { spoolKeys: keyring } : {}),
      leases: this.leases,
    });
    this.manager.on('answered', (session) => this.finaliser.follow({ id: session.id, spoolPath: session.spool.path }));
    this.manager.on('ended', (session, closed) => this.finaliser.take({ id: session.id, spoolPath: session.spool.path, closed }));
    this.sipTransport = new SocketTransport({
      listen: c.sip.listen,
      maxMessageBytes: c.sip.max_message_bytes,
      limits: { maxConnectionsPerSource: c.sip.max_connections_per_source, idleMs: durationMs(c.sip.tcp_idle_timeout), messageMs: durationMs(c.sip.tcp_message_timeout) },
      ...(tls.sip ? { tls: { material: tls.sip, requireClientCertificate: c.tls.require_client_certificate, allowedClientNames: c.tls.allowed_client_names } } : {}),
    });
    this.ua = new SipUserAgent(this.sipTransport, systemClock, this.manager, {
      maxMessageBytes: c.sip.max_message_bytes,
      userAgent: c.sip.user_agent,
      ...(c.sip.contact_host ? { contactHost: c.sip.contact_host } : {}),
      log: this.log.child({ component: 'sip' }),
      sources: new SourcePolicy(c.sip.allowed_sources),
      unlistedSources: c.sip.unlisted_sources,
      inviteLimiter: new RateLimiter(c.sip.invite_rate.perSecond, c.sip.invite_burst, () => performance.now()),
    });
    this.purger = new Purger({
      index: this.index, store: this.store, log: this.log.child({ component: 'retention' }),
      ...(register.purgeLock ? { lock: register.purgeLock } : {}),
    });
    this.metrics = new Metrics({
      calls: this.manager, finaliser: this.finaliser, sip: this.ua, rtp: rtpCounters, encoder: this.encoder, index: this.index,
      store: this.store, ports: this.ports, purger: this.purger, outbox: this.opened.outbox, build: { version: VERSION, node: c.cluster.node_id },
    });
    this.http = new HttpApi({
      config: () => this.config, index: this.index, store: this.store, hasher,
      metrics: this.metrics, ready: () => this.readiness(), log: this.log.child({ component: 'http' }),
      calls: new LiveCalls(this.manager),
      // A listen is the call's own job (its settings, its spool key) encoded on the pool.
      listen: {
        open: async (id, fromMs, sink) => {
          const job = await this.finaliser.listenJob(id, fromMs);
          return job && this.encoder.listen(id, job, sink);
        },
      },
    });

    const recovered = await this.finaliser.recoverSpools({ deleteUnanswered: true });
    if (recovered.started > 0) this.log.warn({ spools: recovered.started }, 'finalising recordings left by an earlier run');
    if (recovered.leasedElsewhere > 0) this.log.warn({ spools: recovered.leasedElsewhere }, 'left spools another process holds the lease of');
    const sip = await this.ua.start();
    for (const l of sip) this.log.info({ transport: l.transport, address: l.address, port: l.port }, 'SIP listening');
    const http = await this.http.listen(c.http.listen, c.metrics.listen, tls.http);
    this.log.info({ address: http.http.address, port: http.http.port, tls: c.http.tls.mode }, 'HTTP listening');
    if (http.metrics) this.log.info({ address: http.metrics.address, port: http.metrics.port }, 'metrics listening');
    this.purger.start(durationMs(c.retention.purge_interval));
    this.started = true;
    this.log.info({ maxCalls: c.calls.max_concurrent, rtpPorts: `${c.rtp.port_min}-${c.rtp.port_max}`, storage: c.storage.dir, audio: c.storage.backend }, 'tallenne ready');
    return { sip, http: http.http, ...(http.metrics ? { metrics: http.metrics } : {}) };
  }

  /**
   * Applies a re-read config (SIGHUP): the keys of the reload table (src/config/reload.ts)
   * take effect for new calls, the next encodes and the purge job; live calls go on
   * untouched. Every other change is reported as needing a restart.
   */
  reload(next: LoadedConfig): { applied: string[]; needRestart: string[] } {
    const changes = diffConfig(describeConfig(this.config), describeConfig(next.config));
    this.config = mergeReload(this.config, next.config);
    this.log.level = this.config.log.level;
    this.reloadTls();
    this.purger?.setInterval(durationMs(this.config.retention.purge_interval));
    return { applied: changes.filter((c) => c.reloadable).map((c) => c.path), needRestart: changes.filter((c) => !c.reloadable).map((c) => c.path) };
  }

  /**
   * Reads the TLS files of the SIP listeners ([tls]) and of the HTTP listener ([tls] or
   * [http.tls]); a block both use is read once.
   */
  private loadTls(c: Config): { sip?: TlsMaterial; http?: TlsMaterial } {
    const sip = sipTlsSource(c);
    const http = httpTlsSource(c);
    const sipMaterial = sip ? loadTlsMaterial(sip) : undefined;
    const httpMaterial = http ? (sipMaterial && http.key === sip!.key ? sipMaterial : loadTlsMaterial(http)) : undefined;
    return { ...(sipMaterial ? { sip: sipMaterial } : {}), ...(httpMaterial ? { http: httpMaterial } : {}) };
  }

  /**
   * Re-reads the TLS files (the same paths may hold renewed certificates) into the TLS
   * listeners, SIP and HTTP, each on its own: a bad file is logged and that listener keeps
   * the certificate in use.
   */
  private reloadTls(): void {
    const apply = (listener: 'sip' | 'http', src: TlsSource | undefined, use: (m: TlsMaterial) => void) => {
      if (!src) return;
      try {
        use(loadTlsMaterial(src));
        this.log.info({ listener, block: src.key }, 'TLS certificate and key reloaded');
      } catch (e) {
        const problems = e instanceof ConfigError || e instanceof KeyFileError ? e.problems : [(e as Error).message];
        this.log.error({ listener, block: src.key, problems }, 'TLS reload failed; the certificate in use stays');
      }
    };
    if (this.sipTransport) apply('sip', sipTlsSource(this.config), (m) => this.sipTransport.reloadTls(m));
    if (this.http) apply('http', httpTlsSource(this.config), (m) => this.http.reloadTls(m));
  }

  async readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    checks.sip = this.started && this.ua.listeners().length > 0 ? 'ok' : 'not listening';
    checks.index = this.index ? 'ok' : 'closed';
    checks.encoder = this.encoder?.alive ? 'ok' : 'no live worker';
    try {
      accessSync(this.config.storage.dir, constants.W_OK);
      const free = (await this.store.usage()).freeBytes;
      checks.disk = free === undefined || free >= this.config.storage.min_free ? 'ok' : `free ${free} bytes is below the floor ${this.config.storage.min_free}`;
    } catch (e) {
      checks.disk = `not writable: ${(e as Error).message}`;
    }
    checks.accepting = this.closing ? 'shutting down' : 'ok';
    const ready = Object.values(checks).every((v) => v === 'ok');
    // Single sign-on is reported but never stops the daemon being ready to record.
    const sso = this.http?.deps.oidc;
    if (sso) checks.oidc = sso.status();
    // Recordings waiting for S3 are reported too: the recorder goes on recording meanwhile.
    const outbox = this.opened?.outbox;
    if (outbox) checks.outbox = outbox.waiting === 0 ? 'ok' : `${outbox.waiting} recordings wait for upload: ${outbox.lastError ?? 'uploading'}`;
    return { ready, checks };
  }

  /**
   * Graceful stop: refuse new calls, let active ones end until the deadline, then end the
   * rest, finalise every recording, close the index. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      const deadline = this.config.calls.shutdown_deadline.ms;
      this.log.info({ activeCalls: this.manager?.activeCalls ?? 0, deadlineMs: deadline }, 'stopping: new calls are refused');
      this.ua?.stopAccepting();
      this.manager?.stopAccepting();
      this.finaliser?.stopRetrying();
      this.opened?.stopRetrying();
      await this.purger?.stop();
      if (this.manager) await this.manager.drain(deadline);
      await this.finaliser?.settled();
      await this.ua?.close();
      this.manager?.close();
      this.batch?.close();
      await this.encoder?.close();
      await this.http?.close();
      await this.leases?.close();
      await this.index?.close();
      this.opened?.close();
      this.log.info('stopped');
    })();
    return this.closing;
  }

  /**
   * Immediate stop: no drain and no waiting for finalisation. Live calls stop capturing and
   * their spools, like those of ended calls not yet stored, stay for recovery at the next
   * start (as truncated recordings where the call was cut). Idempotent; may follow close().
   */
  destroy(): Promise<void> {
    if (this.destroying) return this.destroying;
    this.destroying = (async () => {
      this.log.warn({ activeCalls: this.manager?.activeCalls ?? 0, pendingRecordings: this.finaliser?.pending ?? 0 }, 'stopping now: unfinished recordings are recovered at the next start');
      this.ua?.stopAccepting();
      this.finaliser?.close();
      this.opened?.stopRetrying();
      void this.purger?.stop();
      await this.manager?.abort();
      await this.encoder?.destroy();
      await Promise.allSettled([this.ua?.close(), this.http?.close()]);
      this.log.info('stopped');
    })();
    return this.destroying;
  }
}
