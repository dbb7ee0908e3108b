/**
 * The one schema of the TOML config. Defaults live here and nowhere else; the TypeScript
 * type is inferred from it; unknown keys are rejected with their key path.
 */
import { z } from 'zod';
import { parseDuration, type Duration } from './duration.js';

export const duration = z.string().transform((s, ctx): Duration => {
  const d = parseDuration(s);
  if (typeof d === 'string') {
    ctx.addIssue({ code: 'custom', message: d });
    return z.NEVER;
  }
  return d;
});

/** "udp:127.0.0.1:5060", "tcp:[::1]:5060" */
const LISTEN_RE = /^(udp|tcp):(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):(\d{1,5})$/;
export interface ListenSpec { readonly transport: 'udp' | 'tcp'; readonly address: string; readonly port: number }
const sipListen = z.string().transform((s, ctx): ListenSpec => {
  const m = LISTEN_RE.exec(s);
  if (!m || Number(m[3]) > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not TRANSPORT:ADDRESS:PORT (e.g. "udp:127.0.0.1:5060")` });
    return z.NEVER;
  }
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { transport: m[1] as 'udp' | 'tcp', address: host, port: Number(m[3]) };
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

export const configSchema = z.strictObject({
  sip: z.strictObject({
    listen: z.array(sipListen).min(1).prefault(['udp:127.0.0.1:5060', 'tcp:127.0.0.1:5060']),
    /** Address put in Contact headers; defaults to the listen address. */
    contact_host: z.string().optional(),
    max_message_bytes: z.number().int().min(1024).max(1_048_576).default(65_535),
    user_agent: z.string().default('tallenne'),
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
  }).prefault({}),
  storage: z.strictObject({
    dir: z.string().default('./var'),
    /** Below this much free space new calls are refused with 503. */
    min_free: bytes.prefault('256MiB'),
  }).prefault({}),
  http: z.strictObject({
    listen: hostPort.prefault('127.0.0.1:8080'),
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
    workers: z.number().int().min(1).max(64).optional(),
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
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).prefault({}),
}).superRefine((c, ctx) => {
  if ((c.rtp.address === '0.0.0.0' || c.rtp.address === '::') && !c.rtp.advertise_address) {
    ctx.addIssue({ code: 'custom', path: ['rtp', 'advertise_address'], message: `rtp.address is the wildcard ${c.rtp.address}: set advertise_address to the address the SBC should send media to` });
  }
  if (c.rtp.port_min >= c.rtp.port_max) {
    ctx.addIssue({ code: 'custom', path: ['rtp', 'port_max'], message: 'port_max must be above port_min' });
  }
});

export type Config = z.output<typeof configSchema>;
export type AgentConfig = z.output<typeof agentSchema>;
export type RetentionPolicyConfig = z.output<typeof retentionPolicySchema>;
