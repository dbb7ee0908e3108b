/**
 * What the register commands (`recordings`, `retention`, `audit`) share: opening the index
 * and the audio store named by the config, who the actor is, the JSON shape of a recording,
 * and turning errors into exit codes (0 ok, 1 refused or failed, 2 usage).
 */
import { userInfo } from 'node:os';
import type { CliContext, ParsedArgs } from './context.js';
import { flagString } from './context.js';
import type { Config } from '../config/schema.js';
import { TallenneError } from '../errors.js';
import type { RecordingIndex } from '../index/index.js';
import { openRegister } from '../index/open.js';
import type { JobLock } from '../retention/purge.js';
import { ActionInputError } from '../retention/actions.js';
import type { AudioStore } from '../storage/audio-store.js';
import { openAudioStore, type OpenedStore } from '../storage/open-store.js';
import { keyringFor } from '../crypto/keyring.js';
import type { RecordingEntry } from '../types.js';

export interface Register {
  readonly config: Config;
  readonly index: RecordingIndex;
  readonly store: AudioStore;
  /** Keeps a purge pass to one node at a time (a PostgreSQL register). */
  readonly purgeLock?: JobLock;
}

/** A command line that cannot be run as given: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Opens the register, runs `fn`, closes it, and maps errors to exit codes. The index is the
 * one the daemon has open (the same LMDB environment, whose writers LMDB serialises, or the
 * shared PostgreSQL register).
 */
export async function withRegister(ctx: CliContext, fn: (r: Register) => Promise<number>): Promise<number> {
  let index: RecordingIndex | undefined;
  let opened: OpenedStore | undefined;
  try {
    const config = ctx.loaded.config;
    const register = await openRegister(config);
    index = register.index;
    opened = await openAudioStore(config, keyringFor(config.encryption, { create: false }));
    return await fn({ config, index, ...(register.purgeLock ? { purgeLock: register.purgeLock } : {}), store: opened.store });
  } catch (e) {
    return reportError(ctx, e);
  } finally {
    opened?.close();
    await index?.close();
  }
}

export function reportError(ctx: CliContext, e: unknown): number {
  if (e instanceof UsageError || e instanceof ActionInputError) {
    ctx.err(`error: ${e.message}\n`);
    return 2;
  }
  if (e instanceof TallenneError) {
    ctx.err(`error: ${e.message} (${e.code})\n`);
    return 1;
  }
  ctx.err(`error: ${(e as Error).message}\n`);
  return 1;
}

/** --actor NAME, else the operating-system login (so every action names someone). */
export function actorOf(args: ParsedArgs): string {
  const a = flagString(args, 'actor');
  if (a !== undefined && a.trim().length > 0) return a.trim();
  if (args.flags.has('actor')) throw new UsageError('--actor needs a name');
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers): keep "unknown"
  }
  return `os:${user}`;
}

/** "2026-03-01", "2026-03-01T08:00:00Z" or epoch milliseconds. */
export function parseTime(v: string, flag: string): number {
  const t = /^\d{10,}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) throw new UsageError(`--${flag} "${v}" is not a date (e.g. 2026-03-01 or 2026-03-01T08:00:00Z)`);
  return t;
}

export function positiveInt(v: string | undefined, flag: string, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new UsageError(`--${flag} must be a whole number from 1 to ${max}`);
  return Number(v);
}

/** The JSON form of a recording printed by `list --json` and `show --json`. */
export interface RecordingJson {
  id: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  status: string;
  /** Masked. */
  customerNumber: string | null;
  serviceNumber: string | null;
  /** Agent name, else agent id. */
  agent: string | null;
  agentId: string | null;
  team: string | null;
  direction: string;
  /** Audio key under storage.dir; null once the audio is purged. */
  file: string | null;
  fileBytes: number;
  channels: number;
  sampleRate: number;
  endReason: string;
  siprec: boolean;
  siprecSessionId: string | null;
  node: string | null;
  /** SIPREC group: sessions of one call across transfers share it (`list --group`). */
  groupId: string | null;
  participants: RecordingEntry['participants'];
  legs: RecordingEntry['legs'];
  pauses: RecordingEntry['pauses'];
  dtmf: RecordingEntry['dtmf'];
  retention: RecordingEntry['retention'] | null;
  hold: RecordingEntry['hold'] | null;
  audioPurgedAt: string | null;
}

export function recordingJson(e: RecordingEntry): RecordingJson {
  return {
    id: e.id,
    startedAt: e.startedAt,
    endedAt: e.endedAt,
    durationMs: e.durationMs,
    status: e.status,
    customerNumber: e.customerNumber ?? null,
    serviceNumber: e.serviceNumber ?? null,
    agent: e.agentName ?? e.agentId ?? null,
    agentId: e.agentId ?? null,
    team: e.team ?? null,
    direction: e.direction,
    file: e.audioPurgedAt === undefined ? e.file : null,
    fileBytes: e.fileBytes,
    channels: e.channels,
    sampleRate: e.sampleRate,
    endReason: e.endReason,
    siprec: e.siprec,
    siprecSessionId: e.siprecSessionId ?? null,
    node: e.node ?? null,
    groupId: e.groupId ?? null,
    participants: e.participants,
    legs: e.legs,
    pauses: e.pauses,
    dtmf: e.dtmf,
    retention: e.retention ?? null,
    hold: e.hold ?? null,
    audioPurgedAt: e.audioPurgedAt ?? null,
  };
}

/** One line per recording for people. */
export function recordingLine(e: RecordingEntry): string {
  const dur = `${Math.round(e.durationMs / 1000)}s`;
  const flags = [e.hold ? 'held' : '', e.audioPurgedAt ? 'audio-purged' : ''].filter(Boolean).join(',');
  return [e.id, e.startedAt, dur.padStart(6), e.status, e.customerNumber ?? '-', e.serviceNumber ?? '-', e.agentName ?? e.agentId ?? '-', flags].join('  ').trimEnd();
}
