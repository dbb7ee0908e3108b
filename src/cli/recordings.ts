/**
 * `tallenne recordings ...`: list, show, export, hold, release, erase, find-by-number and
 * rectify. Every subcommand touches personal data, so each takes `--actor NAME` (default: the
 * operating-system login) and is written to the audit log, with filter names and counts but
 * never a number or a name.
 */
import { closeSync, openSync, unlinkSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs, flagString, flagAll, type CliContext, type ParsedArgs } from './context.js';
import {
  actorOf,
  parseTime,
  positiveInt,
  recordingJson,
  recordingLine,
  UsageError,
  withRegister,
  type Register,
} from './register.js';
import { TallenneError } from '../errors.js';
import { RECORDING_STATUSES, toListQuery, type RecordingFilters } from '../index/filters.js';
import { normalizeE164, NumberHasher } from '../privacy/numbers.js';
import { erase, hold, rectify, release } from '../retention/actions.js';
import { EXPORT_FORMATS, exportAudioToFile, type ExportFormat } from '../storage/audio-export.js';
import type { RecordingEntry, RecordingStatus } from '../types.js';

const USAGE = `usage: tallenne recordings <command> [--actor NAME] ...
  list [--from DATE] [--to DATE] [--agent ID] [--team T] [--service NUMBER] [--group ID] [--status complete|truncated]
       [--limit N] [--cursor C] [--json]
  show ID [--json]
  export ID --out FILE [--format opus|wav|mp3]
  hold ID --reason R [--until DATE]
  release ID [--reason R]
  erase ID --reason R
  find-by-number NUMBER [--json]
  rectify ID --field NAME=VALUE [--field ...] [--reason R]
`;

const BOOLEAN_FLAGS = ['json'];

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help') {
    (sub === undefined ? ctx.err : ctx.out)(USAGE);
    return sub === undefined ? 2 : 0;
  }
  const handlers: Record<string, (args: ParsedArgs, r: Register, ctx: CliContext) => Promise<number>> = {
    list,
    show,
    export: exportAudio,
    hold: holdCmd,
    release: releaseCmd,
    erase: eraseCmd,
    'find-by-number': findByNumber,
    rectify: rectifyCmd,
  };
  const handler = handlers[sub];
  if (!handler) {
    ctx.err(`error: unknown command "recordings ${sub}"\n${USAGE}`);
    return 2;
  }
  const args = parseArgs(rest, BOOLEAN_FLAGS);
  return withRegister(ctx, (r) => handler(args, r, ctx));
}

function oneId(args: ParsedArgs, what = 'ID'): string {
  const [id, extra] = args.positionals;
  if (id === undefined || extra !== undefined) throw new UsageError(`give exactly one ${what}`);
  return id;
}

function required(args: ParsedArgs, flag: string): string {
  const v = flagString(args, flag);
  if (v === undefined || v.trim() === '') throw new UsageError(`--${flag} is required`);
  return v;
}

function getEntry(r: Register, id: string): RecordingEntry {
  const e = r.index.get(id);
  if (!e) throw new TallenneError('TALLENNE_NOT_FOUND', `no recording ${id}`);
  return e;
}

async function list(args: ParsedArgs, r: Register, ctx: CliContext): Promise<number> {
  const actor = actorOf(args);
  const filters: RecordingFilters = {};
  const from = flagString(args, 'from');
  const to = flagString(args, 'to');
  if (from !== undefined) filters.from = parseTime(from, 'from');
  if (to !== undefined) filters.to = parseTime(to, 'to');
  for (const [flag, key] of [['agent', 'agent'], ['team', 'team'], ['group', 'group'], ['service', 'service']] as const) {
    const v = flagString(args, flag);
    if (v !== undefined) filters[key] = v;
  }
  const status = flagString(args, 'status');
  if (status !== undefined) {
    if (!(RECORDING_STATUSES as readonly string[]).includes(status)) throw new UsageError(`--status must be one of ${RECORDING_STATUSES.join(', ')}`);
    filters.status = status as RecordingStatus;
  }
  const q = toListQuery(filters, r.config);
  const limit = positiveInt(flagString(args, 'limit'), 'limit', 50, 10_000);
  const cursor = flagString(args, 'cursor');
  const page = r.index.list(q, cursor !== undefined ? { cursor, limit } : { limit });
  await r.index.audit.append({
    actor,
    action: 'list',
    details: { filters: Object.keys(q).sort().join(','), count: page.items.length },
  });
  if (args.flags.has('json')) ctx.out(`${JSON.stringify(page.items.map(recordingJson), null, 2)}\n`);
  else for (const e of page.items) ctx.out(`${recordingLine(e)}\n`);
  if (page.nextCursor !== undefined) ctx.err(`more: --cursor ${page.nextCursor}\n`);
  return 0;
}

async function show(args: ParsedArgs, r: Register, ctx: CliContext): Promise<number> {
  const actor = actorOf(args);
  const id = oneId(args);
  const e = getEntry(r, id);
  await r.index.audit.append({ actor, action: 'show', recordingId: id });
  const j = recordingJson(e);
  if (args.flags.has('json')) {
    ctx.out(`${JSON.stringify(j, null, 2)}\n`);
    return 0;
  }
  for (const [k, v] of Object.entries(j)) ctx.out(`${k.padEnd(15)} ${v === null ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
  if (e.pauses.length > 0) ctx.out(`${'pauses'.padEnd(15)} ${JSON.stringify(e.pauses)}\n`);
  if (e.legs.length > 0) ctx.out(`${'legs'.padEnd(15)} ${JSON.stringify(e.legs)}\n`);
  const rated = e.legs.filter((l) => l.mos !== undefined);
  if (rated.length > 0) ctx.out(`${'mos'.padEnd(15)} ${rated.map((l) => `${l.role} ${l.mos!.toFixed(2)}`).join(', ')}\n`);
  return 0;
}

async function exportAudio(args: ParsedArgs, r: Register, ctx: CliContext): Promise<number> {
  const actor = actorOf(args);
  const id = oneId(args);
  const out = required(args, 'out');
  const fmt = (flagString(args, 'format') ?? (extname(out).slice(1).toLowerCase() || 'opus')) as ExportFormat;
  if (!(EXPORT_FORMATS as readonly string[]).includes(fmt)) throw new UsageError('--format must be opus, wav or mp3');
  const e = getEntry(r, id);
  if (e.audioPurgedAt !== undefined || (await r.store.stat(e)) === null) {
    throw new TallenneError('TALLENNE_NOT_FOUND', `the audio of recording ${id} is no longer stored`);
  }
  // Created exclusively and readable by the owner only before anything is decoded: an
  // existing file is never overwritten, and exported audio is personal data.
  try {
    closeSync(openSync(out, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${out} already exists`);
    throw err;
  }
  // The audit entry comes next: an export that fails half way has still been attempted.
  await r.index.audit.append({ actor, action: 'export', recordingId: id, details: { format: fmt } });
  try {
    await exportAudioToFile(r.store, e, fmt, out);
  } catch (err) {
    try {
      unlinkSync(out);
    } catch {
      // already gone
    }
    throw err;
  }
  ctx.out(`${out}\n`);
  return 0;
}

async function holdCmd(args: ParsedArgs, r: Register, ctx: CliContext): Promise<number> {
  const actor = actorOf(args);
  const id = oneId(args);
  const until = flagString(args, 'until');
  const e = await hold(r.index, id, { actor, reason: required(args, 'reason'), ...(until !== undefined ? { until } : {}) });
  ctx.out(`recording ${id} is on hold${e.hold?.until ? ` until ${e.hold.until}` : ''}\n`);
  return 0;
}

async function releaseCmd(args: ParsedArgs, r: Register, ctx: CliContext): Promise<number> {
  const actor = actorOf(args);
  const id = oneId(args);
  const reason = flagString(args, 'reason');
  await release(r.index, id, { actor, ...(reason !== undefined ? { reason } : {}) });
  ctx.out(`recording ${id} is released; it expires by its policy again\n`);
  return 0;
}

async function eraseCmd(args: ParsedArgs, r: Register, ctx: CliContext): Promise<number> {
  const actor = actorOf(args);
  const id = oneId(args);
  await erase(r.index, r.store, id, { actor, reason: required(args, 'reason') }, r.config.retention, { defaultCountry: r.config.privacy.default_country });
  ctx.out(`recording ${id} is erased\n`);
  return 0;
}

async function findByNumber(args: ParsedArgs, r: Register, ctx: CliContext): Promise<number> {
  const actor = actorOf(args);
  const number = args.positionals.join(' ').trim();
  if (number === '') throw new UsageError('give the NUMBER to look for');
  const e164 = normalizeE164(number, r.config.privacy.default_country);
  if (e164 === null) throw new UsageError('that is not a phone number (an extension or short code is never stored as a customer number)');
  const hash = NumberHasher.open(r.config.privacy.hash_key_file).hash(e164);
  const found: RecordingEntry[] = [];
  let cursor: string | undefined;
  do {
    const page = r.index.list({ numberHash: hash }, cursor !== undefined ? { cursor, limit: 1000 } : { limit: 1000 });
    found.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  await r.index.audit.append({ actor, action: 'find-by-number', details: { matches: found.length } });
  if (args.flags.has('json')) ctx.out(`${JSON.stringify(found.map(recordingJson), null, 2)}\n`);
  else {
    for (const e of found) ctx.out(`${recordingLine(e)}\n`);
    ctx.err(`${found.length} recording(s)\n`);
  }
  return 0;
}

async function rectifyCmd(args: ParsedArgs, r: Register, ctx: CliContext): Promise<number> {
  const actor = actorOf(args);
  const id = oneId(args);
  const fields: Record<string, string> = {};
  for (const f of flagAll(args, 'field')) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new UsageError(`--field "${f}" is not NAME=VALUE`);
    fields[f.slice(0, eq)] = f.slice(eq + 1);
  }
  if (Object.keys(fields).length === 0) throw new UsageError('give at least one --field NAME=VALUE');
  const hasher = 'customerNumber' in fields ? NumberHasher.open(r.config.privacy.hash_key_file) : undefined;
  await rectify(r.index, id, fields, { actor, reason: flagString(args, 'reason') ?? 'rectification request' }, {
    retention: r.config.retention,
    privacy: r.config.privacy,
    agents: r.config.agents,
    ...(hasher ? { hasher } : {}),
  });
  ctx.out(`recording ${id} is rectified (${Object.keys(fields).join(', ')})\n`);
  return 0;
}
