/**
 * `tallenne calls ...`: the calls in progress live in the running daemon's memory, so these
 * commands ask its API (`[http] listen`, or --url) with an API token (`tallenne tokens
 * create`, read from --token-file), under the same roles and audit as any API client.
 *
 *   calls list [--json] [--reason TEXT]
 *   calls listen ID --out FILE --reason TEXT
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { join } from 'node:path';
import type { HostPort } from '../config/schema.js';
import { flagString, parseArgs, type CliContext, type ParsedArgs } from './context.js';

const USAGE = `usage: tallenne calls <command> --token-file FILE [--url URL]
  list [--json] [--reason TEXT]        the calls in progress you may see
  listen ID --out FILE --reason TEXT   write the live audio (Ogg Opus) until the call ends

--token-file names a file holding an API token (tallenne tokens create); --url defaults to
the daemon's [http] listen address.
`;

class CallsUsage extends Error {}

/** Where the running daemon records the address its API listens on. */
export function httpAddressFile(storageDir: string): string {
  return join(storageDir, 'run', 'http-listen.json');
}

/**
 * The daemon's API base: --url, else the address the running daemon recorded at start (its
 * bound port, also when [http] listen asks for port 0), else [http] listen. A wildcard
 * address is asked on loopback.
 */
export function apiBase(configured: HostPort, storageDir: string, url?: string): string {
  if (url !== undefined) return url.replace(/\/+$/, '');
  let listen = configured;
  try {
    const recorded = JSON.parse(readFileSync(httpAddressFile(storageDir), 'utf8')) as Partial<HostPort>;
    if (typeof recorded.address === 'string' && typeof recorded.port === 'number') listen = { address: recorded.address, port: recorded.port };
  } catch {
    // No daemon has recorded its address here: the config's is the best guess.
  }
  let host = listen.address;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

function token(args: ParsedArgs): string {
  const file = flagString(args, 'token-file');
  if (file === undefined) throw new CallsUsage('--token-file FILE is required (a token from `tallenne tokens create`)');
  const t = readFileSync(file, 'utf8').trim();
  if (t === '') throw new CallsUsage(`${file} holds no token`);
  return t;
}

interface LegJson { role: string; codec: string; packets: number; lost: number; jitterMs: number; mos?: number }
interface CallJson { id: string; durationMs: number; state: string; agent: string | null; team: string | null; serviceNumber: string | null; legs: LegJson[] }

function callLine(c: CallJson): string {
  const legs = c.legs.map((l) => `${l.role}:${l.packets}p/${l.lost}lost/${l.jitterMs}ms${l.mos !== undefined ? `/mos ${l.mos.toFixed(2)}` : ''}`).join(' ');
  return [c.id, `${Math.round(c.durationMs / 1000)}s`.padStart(6), c.state, c.agent ?? '-', c.team ?? '-', c.serviceNumber ?? '-', legs].join('  ');
}

async function failure(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error) return `${res.status} ${body.error.code}: ${body.error.message}`;
  } catch {
    // not the API's JSON error shape
  }
  return `${res.status} ${text.slice(0, 200)}`;
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help') {
    (sub === undefined ? ctx.err : ctx.out)(USAGE);
    return sub === undefined ? 2 : 0;
  }
  const args = parseArgs(rest, ['json']);
  const c = ctx.loaded.config;
  const base = `${apiBase(c.http.listen, c.storage.dir, flagString(args, 'url'))}/api/v1`;
  const reason = flagString(args, 'reason');
  try {
    if (sub === 'list') {
      if (args.positionals.length > 0) throw new CallsUsage('calls list takes no arguments');
      const q = reason !== undefined ? `?reason=${encodeURIComponent(reason)}` : '';
      const res = await fetch(`${base}/calls${q}`, { headers: { authorization: `Bearer ${token(args)}` } });
      if (!res.ok) {
        ctx.err(`error: ${await failure(res)}\n`);
        return 1;
      }
      const body = (await res.json()) as { items: CallJson[] };
      if (args.flags.has('json')) ctx.out(`${JSON.stringify(body.items, null, 2)}\n`);
      else for (const c of body.items) ctx.out(`${callLine(c)}\n`);
      return 0;
    }
    if (sub === 'listen') {
      const [id, extra] = args.positionals;
      if (id === undefined || extra !== undefined) throw new CallsUsage('give exactly one call ID');
      const out = flagString(args, 'out');
      if (out === undefined) throw new CallsUsage('--out FILE is required');
      if (reason === undefined) throw new CallsUsage('--reason TEXT is required: every listen is audited with its reason');
      const res = await fetch(`${base}/calls/${encodeURIComponent(id)}/listen?reason=${encodeURIComponent(reason)}`, { headers: { authorization: `Bearer ${token(args)}` } });
      if (!res.ok || res.body === null) {
        ctx.err(`error: ${await failure(res)}\n`);
        return 1;
      }
      try {
        await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(out, { mode: 0o600 }));
      } catch (e) {
        // The daemon answered, then the stream broke off: it cut a listener that fell behind,
        // or it stopped. What came is kept.
        const why = (e as { cause?: Error }).cause?.message ?? (e as Error).message;
        ctx.err(`error: the listen stream broke off before the call ended (${why}); the audio received so far is in ${out}\n`);
        return 1;
      }
      ctx.err(`the call ended; its audio is in ${out}\n`);
      return 0;
    }
  } catch (e) {
    if (e instanceof CallsUsage) {
      ctx.err(`error: ${e.message}\n${USAGE}`);
      return 2;
    }
    if (e instanceof TypeError && (e as { cause?: unknown }).cause !== undefined) {
      ctx.err(`error: the daemon's API at ${base} cannot be reached (${String((e.cause as Error).message ?? e.cause)})\n`);
      return 1;
    }
    throw e;
  }
  ctx.err(`error: unknown command "calls ${sub}"\n${USAGE}`);
  return 2;
}
