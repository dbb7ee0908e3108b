/**
 * The one schema of the TOML config. Defaults live here and nowhere else; the TypeScript
 * type is inferred from it; unknown keys are rejected with their key path.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { parseDuration, type Duration } from './duration.js';
import { cidrProblem } from '../sip/source-policy.js';
import { postgresUrlProblem } from '../index/postgres/url.js';

export const duration = z.string().transform((s, ctx): Duration => {
  const d = parseDuration(s);
  if (typeof d === 'string') {
    ctx.addIssue({ code: 'custom', message: d });
    return z.NEVER;
  }
  return d;
});

/** "udp:127.0.0.1:5060", "tcp:[::1]:5060", "tls:127.0.0.1:5061" */
const LISTEN_RE = /^(udp|tcp|tls):(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):(\d{1,5})$/;
export interface ListenSpec { readonly transport: 'udp' | 'tcp' | 'tls'; readonly address: string; readonly port: number }
const sipListen = z.string().transform((s, ctx): ListenSpec => {
  const m = LISTEN_RE.exec(s);
  if (!m || Number(m[3]) > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not TRANSPORT:ADDRESS:PORT (e.g. "udp:127.0.0.1:5060")` });
    return z.NEVER;
  }
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { transport: m[1] as ListenSpec['transport'], address: host, port: Number(m[3]) };
});

/** "127.0.0.1:8080" or "[::1]:8080" */
export interface HostPort { readonly address: string; readonly port: number }
const hostPort = z.string().transform((s, ctx): HostPort => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not ADDRESS:PORT (e.g. "127.0.0.1:8080")` });
    return z.NEVER;
  }
  return { address: m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!, port: Number(m[2]) };
});

const bytes = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx): number => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$/i.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (e.g. "512MiB", "2GB")` });
    return z.NEVER;
  }
  const mult: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3, tb: 1e12, tib: 1024 ** 4 };
  return Math.round(Number(m[1]) * mult[(m[2] ?? 'b').toLowerCase()]!);
});

const regex = z.string().transform((s, ctx) => {
  try {
    return new RegExp(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `not a regular expression: ${(e as Error).message}` });
    return z.NEVER;
  }
});

const d = (s: string) => duration.prefault(s);

/**
 * A PostgreSQL URL without a password (one belongs in [index] url_file, a private file). The
 * value is never repeated in a message: a mistyped password would land in the output.
 */
const postgresUrl = z.string().transform((s, ctx): string => {
  const problem = postgresUrlProblem(s);
  if (problem !== undefined) {
    ctx.addIssue({ code: 'custom', message: problem });
    return z.NEVER;
  }
  if (new URL(s).password !== '') {
    ctx.addIssue({ code: 'custom', message: 'holds a password: put the URL in a private file named by index.url_file instead' });
    return z.NEVER;
  }
  return s;
});

/** "10.0.0.0/8", "2001:db8::/32", or a single address. */
const cidr = z.string().transform((s, ctx): string => {
  const problem = cidrProblem(s);
  if (problem !== undefined) {
    ctx.addIssue({ code: 'custom', message: problem });
    return z.NEVER;
  }
  return s.trim();
});

/** "20/s", "600/min": requests per second. */
export interface Rate { readonly perSecond: number; readonly text: string }
const rate = z.string().transform((s, ctx): Rate => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(s|sec|second|m|min|minute)\s*$/i.exec(s);
  if (!m || Number(m[1]) <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not a rate (e.g. "20/s", "600/min")` });
    return z.NEVER;
  }
  const per = m[2]!.toLowerCase().startsWith('m') ? 60 : 1;
  return { perSecond: Number(m[1]) / per, text: s };
});

const NODE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The host name, cut to what a node id may hold (the default node id). */
export function defaultNodeId(): string {
  const name = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return NODE_ID_RE.test(name) ? name : 'tallenne';
}

export const agentSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  extensions: z.array(z.string().min(1)).default([]),
  team: z.string().min(1).optional(),
  supervisor_of: z.array(z.string()).default([]),
});

export const retentionPolicySchema = z.strictObject({
  name: z.string().min(1),
  match: z.strictObject({
    service_number: z.union([z.string(), z.array(z.string())]).optional(),
    trunk: z.union([z.string(), z.array(z.string())]).optional(),
    team: z.union([z.string(), z.array(z.string())]).optional(),
    metadata: z.record(z.string(), z.string()).optional(),
  }).default({}),
  audio: duration,
  metadata: duration,
  /** Absent: the rule inherits [retention] erasure. */
  erasure: z.enum(['allowed', 'refused']).optional(),
  erasure_refused_reason: z.string().optional(),
});

/** Signature algorithms an access token may use: asymmetric only ("none" and HMAC never). */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** "http:" is accepted only for a loopback host (a provider on the same machine, tests). */
function secureUrl(what: string) {
  return z.string().transform((s, ctx): string => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${s}" is not a URL` });
      return z.NEVER;
    }
    const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(u.hostname);
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
      ctx.addIssue({ code: 'custom', message: `${what} must be an https: URL (http: only on a loopback host)` });
      return z.NEVER;
    }
    return s;
  });
}

/** [auth.oidc]: single sign-on with an OpenID Connect provider (absent: no SSO). */
export const oidcSchema = z.strictObject({
  issuer: secureUrl('issuer'),
  client_id: z.string().min(1),
  /** Absent: a public client (PKCE only). The file must not be readable by others. */
  client_secret_file: z.string().min(1).optional(),
  redirect_url: secureUrl('redirect_url'),
  scopes: z.array(z.string().min(1)).default(['openid', 'profile']),
  role_claim: z.string().min(1).default('roles'),
  team_claim: z.string().min(1).default('teams'),
  agent_claim: z.string().min(1).default('agent_id'),
  name_claim: z.string().min(1).default('preferred_username'),
  /** The `aud` an access token must carry to be accepted by the API; default: client_id. */
  audience: z.string().min(1).optional(),
  algorithms: z.array(z.enum(OIDC_ALGORITHMS)).min(1).default(['RS256', 'PS256', 'ES256', 'EdDSA']),
  clock_tolerance: d('30s'),
}).refine((o) => o.scopes.includes('openid'), { path: ['scopes'], message: 'scopes must include "openid"' });

export const configSchema = z.strictObject({
  sip: z.strictObject({
    listen: z.array(sipListen).min(1).prefault(['udp:127.0.0.1:5060', 'tcp:127.0.0.1:5060']),
    /** Address put in Contact headers; defaults to the listen address. */
    contact_host: z.string().optional(),
    max_message_bytes: z.number().int().min(1024).max(1_048_576).default(65_535),
    user_agent: z.string().default('tallenne'),
    /** CIDR ranges SIP requests are taken from; empty: from anywhere. */
    allowed_sources: z.array(cidr).default([]),
    /** What a request from outside allowed_sources gets: a 403, or nothing at all. */
    unlisted_sources: z.enum(['reject', 'drop']).default('reject'),
    /** New INVITEs per source address, sustained; beyond it and the burst they get 503. */
    invite_rate: rate.prefault('200/s'),
    invite_burst: z.number().int().min(1).default(500),
    /** Open TCP/TLS connections one source address may hold. */
    max_connections_per_source: z.number().int().min(1).default(32),
    /** A TCP/TLS connection with no traffic for this long is closed. */
    tcp_idle_timeout: d('10m'),
    /** A message begun on a TCP/TLS connection must be whole within this. */
    tcp_message_timeout: d('20s'),
  }).prefault({}),
  /** Certificates for `tls:` SIP listeners (and for HTTPS with [http.tls] mode = "sip"). */
  tls: z.strictObject({
    certificate_file: z.string().optional(),
    key_file: z.string().optional(),
    /** CA bundle client certificates are checked against. */
    ca_file: z.string().optional(),
    require_client_certificate: z.boolean().default(false),
    /** Client certificate names (subject CN or SAN DNS) let in; empty: any the CA signed. */
    allowed_client_names: z.array(z.string().min(1)).default([]),
  }).prefault({}),
  rtp: z.strictObject({
    address: z.string().default('127.0.0.1'),
    /** Address written into SDP answers; needed when `address` is a wildcard (0.0.0.0, ::). */
    advertise_address: z.string().optional(),
    port_min: z.number().int().min(1024).max(65534).default(20000),
    port_max: z.number().int().min(1025).max(65535).default(29999),
    inactivity_timeout: d('60s'),
    /** "optional": SRTP (SDES) when offered, plain RTP otherwise; "required": plain offers get 488. */
    srtp: z.enum(['optional', 'required']).default('optional'),
    /** "latch": the first source of a leg, then only it; "strict": only the offer's address and port. */
    source: z.enum(['latch', 'strict']).default('latch'),
    /**
     * Receive buffer asked of the kernel for each RTP socket: room for the packets that come
     * while the capture thread is held up (a burst of call set-ups, a collection). Linux caps
     * it at net.core.rmem_max.
     */
    receive_buffer: bytes.prefault('1MiB'),
    /**
     * How the RTP sockets are read: "batched" drains every ready socket with recvmmsg(2) and
     * hands the packets over once per batch (the native addon npm ci builds); "node" takes
     * Node's one event per datagram; "auto" batches where the addon loads and says so if not.
     */
    receive: z.enum(['auto', 'batched', 'node']).default('auto'),
  }).prefault({}),
  storage: z.strictObject({
    /** Spools, the index and (with backend "fs") the audio; with "s3" the outbox of uploads. */
    dir: z.string().default('./var'),
    /** Below this much free space new calls are refused with 503. */
    min_free: bytes.prefault('256MiB'),
    /** Where finished recordings are kept: "fs" (files under dir) or "s3" (a bucket). */
    backend: z.enum(['fs', 's3']).default('fs'),
    /** backend "s3": the bucket, and a key prefix inside it ("site-a/"). */
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'bucket: 3 to 63 lower-case letters, digits, "." and "-"').optional(),
    prefix: z.string().regex(/^(?!\/)(?!.*\.\.)[A-Za-z0-9!_.*'()/-]*$/, 'prefix: letters, digits and !_.*\'()/- without a leading "/" or ".."').default(''),
    /** An S3-compatible endpoint URL; absent: AWS's endpoint for the region. */
    endpoint: z.url({ protocol: /^https?$/ }).optional(),
    region: z.string().min(1).default('us-east-1'),
    /** Bucket in the path (https://host/bucket/key), as most S3-compatible servers want. */
    force_path_style: z.boolean().default(false),
    /**
     * Access key and secret (private to its owner: aws_access_key_id and
     * aws_secret_access_key lines); absent: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
     */
    credentials_file: z.string().optional(),
  }).prefault({}),
  /** The register: the embedded LMDB under storage.dir, or one PostgreSQL shared by several recorders. */
  index: z.strictObject({
    backend: z.enum(['lmdb', 'postgres']).default('lmdb'),
    /** postgres://USER@HOST:PORT/DB (no password here: put a URL with one in url_file). */
    url: postgresUrl.optional(),
    /** A private file (mode 0600) holding the URL, password included. */
    url_file: z.string().min(1).optional(),
    /** Connections each process keeps to PostgreSQL. */
    pool_size: z.number().int().min(1).max(100).default(10),
  }).prefault({}),
  http: z.strictObject({
    listen: hostPort.prefault('127.0.0.1:8080'),
    /** HTTPS on the [http] listener; the [metrics] listener stays plain. */
    tls: z.strictObject({
      /** "off": plain HTTP; "sip": the certificate, key and CA of [tls]; "own": the files below. */
      mode: z.enum(['off', 'sip', 'own']).default('off'),
      certificate_file: z.string().optional(),
      key_file: z.string().optional(),
      /** CA bundle client certificates are checked against (mode "own"). */
      ca_file: z.string().optional(),
      /** Mutual TLS: a client without a certificate from the CA is refused at the handshake. */
      require_client_certificate: z.boolean().default(false),
      /** Client certificate names (subject CN or SAN DNS) let in; empty: any the CA signed. */
      allowed_client_names: z.array(z.string().min(1)).default([]),
      /** Strict-Transport-Security max-age sent over HTTPS; "0s" sends none. */
      hsts_max_age: d('365 days'),
    }).prefault({}),
  }).prefault({}),
  api: z.strictObject({
    /** Most recordings one bulk export (POST /api/v1/exports) may hold. */
    max_export: z.number().int().min(1).max(100_000).default(500),
    /** Largest request body accepted. */
    body_limit: bytes.prefault('64KiB'),
    /** Requests per minute per identity. */
    rate_limit: z.number().int().min(1).default(1200),
    /** Requests per minute per client address before a login (token login, SSO redirects). */
    login_rate_limit: z.number().int().min(1).default(30),
  }).prefault({}),
  access: z.strictObject({
    /** The access review flags users not used for this long. */
    review_after: d('90 days'),
  }).prefault({}),
  metrics: z.strictObject({
    /** Optional separate listener for /metrics; by default it is served on [http] listen. */
    listen: hostPort.optional(),
  }).prefault({}),
  calls: z.strictObject({
    max_concurrent: z.number().int().min(1).default(500),
    shutdown_deadline: d('30s'),
  }).prefault({}),
  encoder: z.strictObject({
    /** Encoder threads: "auto" (one per core, see encoderWorkerCount) or a number. */
    workers: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default('auto'),
    complexity: z.number().int().min(0).max(10).default(5),
    bitrate: z.number().int().min(6000).max(510000).default(24000),
    /** A silent leg is not run through the encoder: its silence packet is reused. */
    skip_silence: z.boolean().default(true),
  }).prefault({}),
  privacy: z.strictObject({
    mask_digits: z.number().int().min(0).max(15).default(3),
    default_country: z.string().regex(/^\d{1,3}$/).default('358'),
    hash_key_file: z.string().default('./var/number-hash.key'),
    mask_dtmf: z.boolean().default(false),
  }).prefault({}),
  /** Encryption at rest of the recordings (src/crypto/, src/storage/). */
  encryption: z.strictObject({
    /** Encrypt each new recording under its own data key; false writes plain Ogg Opus. */
    enabled: z.boolean().default(true),
    /** The master keys that wrap the data keys (created with mode 0600 if absent). */
    master_key_file: z.string().default('./var/master.key'),
  }).prefault({}),
  roles: z.strictObject({
    service_numbers: z.array(z.string()).default([]),
    internal_pattern: regex.prefault('^\\d{3,5}$'),
  }).prefault({}),
  agents: z.array(agentSchema).default([]),
  retention: z.strictObject({
    audio: d('6 months'),
    metadata: d('3 years 3 months'),
    purge_interval: d('1h'),
    erasure: z.enum(['allowed', 'refused']).default('allowed'),
    erasure_refused_reason: z.string().optional(),
    policy: z.array(retentionPolicySchema).default([]),
  }).prefault({}),
  auth: z.strictObject({
    oidc: oidcSchema.optional(),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).prefault({}),
  cluster: z.strictObject({
    /** This recorder's name among several: stored in each recording and on tallenne_build_info. */
    node_id: z.string().regex(NODE_ID_RE, 'node_id: letters, digits, ".", "_" and "-", up to 63 characters, starting with a letter or digit').default(defaultNodeId),
  }).prefault({}),
}).superRefine((c, ctx) => {
  if (c.storage.backend === 's3' && !c.storage.bucket) {
    ctx.addIssue({ code: 'custom', path: ['storage', 'bucket'], message: 'backend "s3" needs the bucket the recordings go to' });
  }
  if ((c.rtp.address === '0.0.0.0' || c.rtp.address === '::') && !c.rtp.advertise_address) {
    ctx.addIssue({ code: 'custom', path: ['rtp', 'advertise_address'], message: `rtp.address is the wildcard ${c.rtp.address}: set advertise_address to the address the SBC should send media to` });
  }
  if (c.sip.listen.some((l) => l.transport === 'tls')) {
    for (const k of ['certificate_file', 'key_file'] as const) {
      if (!c.tls[k]) ctx.addIssue({ code: 'custom', path: ['tls', k], message: `a tls: listener in sip.listen needs tls.${k}` });
    }
  }
  if (c.tls.require_client_certificate && !c.tls.ca_file) {
    ctx.addIssue({ code: 'custom', path: ['tls', 'ca_file'], message: 'require_client_certificate needs ca_file, the CA client certificates are checked against' });
  }
  if (c.tls.allowed_client_names.length > 0 && !c.tls.require_client_certificate) {
    ctx.addIssue({ code: 'custom', path: ['tls', 'allowed_client_names'], message: 'allowed_client_names needs require_client_certificate = true' });
  }
  httpTlsIssues(c, ctx);
  indexIssues(c, ctx);
  if (c.rtp.port_min >= c.rtp.port_max) {
    ctx.addIssue({ code: 'custom', path: ['rtp', 'port_max'], message: 'port_max must be above port_min' });
  }
});

/** [index]: postgres takes exactly one of url and url_file; lmdb takes neither. */
function indexIssues(c: Config, ctx: z.RefinementCtx): void {
  const i = c.index;
  if (i.backend === 'postgres') {
    if ((i.url === undefined) === (i.url_file === undefined)) ctx.addIssue({ code: 'custom', path: ['index', 'url'], message: 'backend = "postgres" needs one of url and url_file' });
  } else {
    for (const k of ['url', 'url_file'] as const) {
      if (i[k] !== undefined) ctx.addIssue({ code: 'custom', path: ['index', k], message: 'set, but backend = "lmdb" keeps the register under storage.dir: remove it, or set backend = "postgres"' });
    }
  }
}

/** The rules of [http.tls]: which block the files come from, and what mutual TLS needs. */
function httpTlsIssues(c: Config, ctx: z.RefinementCtx): void {
  const t = c.http.tls;
  const at = (k: string) => ['http', 'tls', k];
  const files = ['certificate_file', 'key_file', 'ca_file'] as const;
  if (t.mode === 'own') {
    for (const k of ['certificate_file', 'key_file'] as const) {
      if (!t[k]) ctx.addIssue({ code: 'custom', path: at(k), message: `mode = "own" needs http.tls.${k}` });
    }
  } else {
    const why = t.mode === 'sip' ? 'mode = "sip" takes the files of [tls]' : 'mode = "off" serves plain HTTP';
    for (const k of files) {
      if (t[k]) ctx.addIssue({ code: 'custom', path: at(k), message: `set, but ${why}: remove it, or set mode = "own"` });
    }
  }
  if (t.mode === 'sip') {
    for (const k of ['certificate_file', 'key_file'] as const) {
      if (!c.tls[k]) ctx.addIssue({ code: 'custom', path: at('mode'), message: `mode = "sip" needs tls.${k}` });
    }
  }
  if (t.mode === 'off' && (t.require_client_certificate || t.allowed_client_names.length > 0)) {
    ctx.addIssue({ code: 'custom', path: at('mode'), message: 'client certificates need TLS: set mode = "sip" or "own"' });
    return;
  }
  const ca = t.mode === 'sip' ? c.tls.ca_file : t.ca_file;
  if (t.require_client_certificate && !ca) {
    ctx.addIssue({ code: 'custom', path: at('require_client_certificate'), message: `needs a CA to check client certificates against: ${t.mode === 'sip' ? 'tls.ca_file' : 'http.tls.ca_file'}` });
  }
  if (t.allowed_client_names.length > 0 && !t.require_client_certificate) {
    ctx.addIssue({ code: 'custom', path: at('allowed_client_names'), message: 'allowed_client_names needs require_client_certificate = true' });
  }
}

export type Config = z.output<typeof configSchema>;
export type HttpTlsConfig = Config['http']['tls'];
export type OidcConfig = z.output<typeof oidcSchema>;
export type TlsConfig = Config['tls'];
export type AgentConfig = z.output<typeof agentSchema>;
export type RetentionPolicyConfig = z.output<typeof retentionPolicySchema>;
