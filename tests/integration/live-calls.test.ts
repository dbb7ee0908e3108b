/**
 * Calls in progress against the real daemon over real sockets: GET /api/v1/calls scoped by
 * role as recordings are, `tallenne calls list` through the daemon's API with a token, and
 * live listen (GET /api/v1/calls/{id}/listen): a listener hears the tone being sent while
 * the call runs, with plain spools and with encryption at rest on (sealed spools), encoded
 * on an encoder thread; a listener who goes away frees the worker's listen; a caller not
 * allowed gets 403 and is audited; and each listen counts in the metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import { BIN, removeDir, startDaemon, type DaemonHandle } from '../support/daemon.js';
import { startCall, type LiveCall } from '../support/recorded-call.js';
import { AGENTS_TOML } from '../support/api-fixture.js';
import { SipTestClient } from '../support/sip-client.js';
import { siprecMultipart, siprecSdp, rsMetadata } from '../support/siprec-body.js';
import { tonesForAnswer, closeAll } from '../support/legs.js';
import { decodeWithFfmpeg, tonePower } from '../support/audio.js';
import { OPUS_PRE_SKIP_48K } from '../../src/encoder/opus-native.js';
import { tempDir } from '../support/cleanup.js';
import { Keyring } from '../../src/crypto/keyring.js';
import { spoolKeyOf } from '../../src/spool/reader.js';
import { SPOOL_MAGIC_SEALED, spoolDirOf } from '../../src/spool/format.js';

const execFileAsync = promisify(execFile);
const CUSTOMER = '+358405556667';

/** A daemon with its users' tokens. */
interface Site {
  readonly d: DaemonHandle;
  readonly base: string;
  readonly tokens: Record<string, string>;
  readonly tokenFiles: Record<string, string>;
}

/** The daemon most tests use (plain spools). */
let site: Site;
let d: DaemonHandle;
let base: string;
let tokens: Record<string, string>;
let tokenFiles: Record<string, string>;
/** A daemon with encryption at rest on: its spools are sealed. */
let sealedSite: Site;
const calls: LiveCall[] = [];

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return cliOn(d, ...args);
}

async function cliOn(on: DaemonHandle, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(process.execPath, [BIN, ...args, '--config', on.configFile], { encoding: 'utf8' });
}

async function liveCalls(user: string, reason?: string, at: Site = site): Promise<{ status: number; body: { items?: Array<Record<string, unknown>>; error?: { code: string } } }> {
  const q = reason !== undefined ? `?reason=${encodeURIComponent(reason)}` : '';
  const r = await fetch(`${at.base}/api/v1/calls${q}`, { headers: { authorization: `Bearer ${at.tokens[user]}` } });
  return { status: r.status, body: (await r.json()) as { items?: Array<Record<string, unknown>> } };
}

const USERS: Array<[string, string[]]> = [
  ['aino', ['--role', 'agent', '--agent', 'aino']],
  ['sari', ['--role', 'supervisor', '--agent', 'sari']],
  ['q', ['--role', 'quality']],
  ['m', ['--role', 'maintainer']],
  ['dpo', ['--role', 'dpo']],
  ['sec', ['--role', 'security']],
];

async function openSite(users: readonly string[], set?: Record<string, string>): Promise<Site> {
  const on = await startDaemon({ extraToml: AGENTS_TOML, ...(set ? { set } : {}) });
  const site: Site = { d: on, base: `http://127.0.0.1:${on.httpPort}`, tokens: {}, tokenFiles: {} };
  for (const [name, flags] of USERS.filter(([n]) => users.includes(n))) {
    await cliOn(on, 'users', 'add', name, ...flags, '--actor', 'test-admin');
    site.tokens[name] = (await cliOn(on, 'tokens', 'create', name, '--actor', 'test-admin')).stdout.trim();
    site.tokenFiles[name] = join(on.dir, `${name}.token`);
    writeFileSync(site.tokenFiles[name], `${site.tokens[name]}\n`, { mode: 0o600 });
  }
  return site;
}

beforeAll(async () => {
  [site, sealedSite] = await Promise.all([
    openSite(USERS.map(([n]) => n)),
    openSite(['sari', 'q', 'sec'], { encryption: 'enabled = true' }),
  ]);
  ({ d, base, tokens, tokenFiles } = site);
  // Aino (helpdesk) and Cecilia (sales) are on a call each.
  calls.push(await startCall(d, CUSTOMER, '1001'));
  calls.push(await startCall(d, CUSTOMER, '1003'));
}, 180_000);

afterAll(async () => {
  for (const s of [site, sealedSite]) {
    await s?.d.kill();
    if (s) removeDir(s.d.dir);
  }
});

describe('GET /api/v1/calls', () => {
  it('shows each caller the calls in progress their roles see, with duration, agent, team and per-leg reception', async () => {
    const all = await liveCalls('q');
    expect(all.status).toBe(200);
    expect(all.body.items!.map((c) => c.agentId).sort()).toEqual(['aino', 'cecilia']);
    const aino = all.body.items!.find((c) => c.agentId === 'aino')!;
    expect(aino).toMatchObject({ agent: 'Aino', team: 'helpdesk', state: 'recording', customerNumber: '+358405556***' });
    expect(aino.durationMs as number).toBeGreaterThan(0);
    const legs = aino.legs as Array<{ role: string; packets: number; lost: number; jitterMs: number; codec: string }>;
    expect(legs.map((l) => l.role).sort()).toEqual(['agent', 'customer']);
    for (const l of legs) {
      expect(l.codec).toMatch(/^PCM[UA]$/);
      expect(l.lost).toBe(0);
      expect(l.jitterMs).toBeGreaterThanOrEqual(0);
    }

    const own = await liveCalls('aino');
    expect(own.body.items!.map((c) => c.agentId)).toEqual(['aino']);
    const team = await liveCalls('sari');
    expect(team.body.items!.map((c) => c.team)).toEqual(['helpdesk']);
    // A maintainer needs a reason, as for recordings; a DPO does not browse calls.
    expect((await liveCalls('m')).status).toBe(403);
    expect((await liveCalls('m', 'incident 7')).body.items).toHaveLength(2);
    const dpo = await liveCalls('dpo');
    expect(dpo.status).toBe(403);
    expect(dpo.body.error!.code).toBe('API_FORBIDDEN');
    // The clear number never leaves the daemon.
    expect(JSON.stringify(all.body)).not.toContain('5556667');
  });

  it('tallenne calls list asks the running daemon with a token', async () => {
    const text = (await cli('calls', 'list', '--token-file', tokenFiles.sari!)).stdout;
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/recording {2}Aino {2}helpdesk/);
    const json = JSON.parse((await cli('calls', 'list', '--json', '--token-file', tokenFiles.q!)).stdout) as Array<{ agentId: string }>;
    expect(json.map((c) => c.agentId).sort()).toEqual(['aino', 'cecilia']);
    await expect(cli('calls', 'list', '--token-file', tokenFiles.dpo!)).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/403 API_FORBIDDEN/) });
    await expect(cli('calls', 'list')).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/--token-file/) });
  });
});

/** A listener over real HTTP: every chunk kept as it arrives. */
interface Listener {
  readonly status: Promise<number>;
  readonly chunks: Buffer[];
  /** Resolves when the response ends (the call ended). */
  readonly done: Promise<void>;
  readonly req: ClientRequest;
  /** When each chunk came (Date.now()), and the stream's length after it. */
  readonly arrivals: Array<{ at: number; end: number }>;
  bytes(): Buffer;
}

function listen(user: string, id: string, reason?: string, at: Site = site): Listener {
  const chunks: Buffer[] = [];
  const arrivals: Array<{ at: number; end: number }> = [];
  let received = 0;
  let setStatus!: (s: number) => void;
  const status = new Promise<number>((r) => (setStatus = r));
  let finished!: () => void;
  let failed!: (e: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finished = resolve;
    failed = reject;
  });
  const q = reason !== undefined ? `?reason=${encodeURIComponent(reason)}` : '';
  const req = httpRequest({ host: '127.0.0.1', port: at.d.httpPort, path: `/api/v1/calls/${id}/listen${q}`, headers: { authorization: `Bearer ${at.tokens[user]}` } }, (res) => {
    setStatus(res.statusCode!);
    res.on('data', (c: Buffer) => {
      chunks.push(c);
      received += c.length;
      arrivals.push({ at: Date.now(), end: received });
    });
    res.on('end', () => finished());
    res.on('error', (e) => failed(e));
  });
  req.on('error', (e) => failed(e));
  req.end();
  // A test that drops the connection itself does not await `done`; its rejection is expected.
  done.catch(() => undefined);
  return { status, chunks, done, req, arrivals, bytes: () => Buffer.concat(chunks) };
}

/** The Ogg pages of a stream: where each ends and its granule position (48 kHz samples). */
function oggPages(buf: Buffer): Array<{ end: number; granule: number }> {
  const pages: Array<{ end: number; granule: number }> = [];
  let o = 0;
  while (o + 27 <= buf.length && buf.toString('latin1', o, o + 4) === 'OggS') {
    const segs = buf[o + 26]!;
    let size = 27 + segs;
    for (let i = 0; i < segs; i++) size += buf[o + 27 + i]!;
    if (o + size > buf.length) break;
    o += size;
    pages.push({ end: o, granule: Number(buf.readBigUInt64LE(o - size + 6)) });
  }
  return pages;
}

/**
 * When the listener had received the audio at `sample` (8 kHz, from the stream's start): the
 * arrival of the chunk that completed the first page whose granule position reaches it.
 */
function receivedAt(l: Listener, sample: number): number {
  const granule = OPUS_PRE_SKIP_48K + sample * 6;
  const page = oggPages(l.bytes()).find((p) => p.granule >= granule);
  if (!page) throw new Error(`no page reaches sample ${sample}`);
  return l.arrivals.find((a) => a.end >= page.end)!.at;
}

/** A metric's value; `name` may carry its labels, as the page prints them (`x{reason="too_slow"}`). */
async function metric(name: string, at: Site = site): Promise<number> {
  const page = await (await fetch(`${at.base}/metrics`)).text();
  const line = page.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface AuditRow { actor: string; action: string; recordingId?: string; reason?: string; details?: Record<string, unknown> }

async function audit(at: Site = site): Promise<AuditRow[]> {
  const r = await fetch(`${at.base}/api/v1/audit?limit=1000`, { headers: { authorization: `Bearer ${at.tokens.sec}`, 'x-tallenne-reason': 'test' } });
  return ((await r.json()) as { items: AuditRow[] }).items;
}

/** The log line of a listen's end, as the route writes it once the worker has reported. */
interface ListenEndLine { msg: string; call?: string; reason?: string; thread?: number; bytes?: number; frames?: number }

function listenEnded(at: Site, id: string, reason: string): Promise<ListenEndLine> {
  return at.d.waitForLog((l) => {
    const line = l as unknown as ListenEndLine;
    return line.call === id && line.reason === reason && line.msg.startsWith('live listen');
  }) as unknown as Promise<ListenEndLine>;
}

/**
 * A call with a tone on each leg, the agent's starting while a supervisor listens: the
 * listener must have received the agent's tone within 3 s of its first packet, while the
 * call runs, and the stream (examined once the call is over) is a valid two-channel Ogg Opus
 * file with both tones where they belong. Returns the call's id.
 */
async function listenerHearsTheTone(at: Site, onCall?: (id: string) => Promise<void>): Promise<string> {
  const dir = tempDir('listen');
  const client = new SipTestClient('udp', at.d.udpPort);
  await client.open();
  const { body, contentType } = siprecMultipart(siprecSdp(), rsMetadata(CUSTOMER, '1002'));
  const res = await client.invite({ body, contentType, headers: ['Require: siprec'] });
  expect(res.status).toBe(200);
  // Customer 440 Hz (left) from the start; the agent (right) says nothing yet.
  const legs = await tonesForAnswer(res.body.toString());
  expect(legs.map((l) => l.toneHz)).toEqual([440, 1000]);
  legs[0]!.sender.start();
  let id = '';
  await until(async () => {
    const all = (await liveCalls('q', undefined, at)).body.items!;
    id = (all.find((c) => c.agentId === 'bertta')?.id as string | undefined) ?? '';
    return id !== '';
  }, 'the call to be listed');

  const before = await metric('tallenne_listens_total', at);
  const ended = listenEnded(at, id, 'call_ended');
  const l = listen('sari', id, 'coaching', at);
  expect(await l.status).toBe(200);
  await until(() => l.bytes().length > 0, 'the stream to start');
  await onCall?.(id);
  // The customer has talked for at least 0.8 s before the agent starts (the check below
  // looks at the half second before the agent's tone).
  await until(() => legs[0]!.sender.log.length >= 40, 'the customer to have talked');

  // The agent starts a 1000 Hz tone now; the listener must have received it within 3 s of
  // its first packet, while the call runs. The stream is examined once the call is over:
  // the first 20 ms of tone in it, and when the page holding it arrived.
  legs[1]!.sender.start();
  await until(() => legs[1]!.sender.log.length > 0, 'the first packet of the tone');
  const sentAt = legs[1]!.sender.log[0]!.at;
  await until(() => l.arrivals.some((a) => a.at >= sentAt + 4000), 'four more seconds of the stream', 30_000);
  const callRunning = (await liveCalls('q', undefined, at)).body.items!.some((c) => c.id === id);
  expect(callRunning).toBe(true);

  // Hanging up ends the stream; what was received is a valid two-channel Ogg Opus file.
  closeAll(legs);
  expect((await client.bye()).status).toBe(200);
  client.close();
  await l.done;
  const whole = join(dir, 'whole.opus');
  writeFileSync(whole, l.bytes());
  const pcm = decodeWithFfmpeg(whole);
  const [left, right] = pcm.channels;
  let toneAt = -1;
  for (let i = 0; i + 160 <= right!.length; i += 160) {
    if (tonePower(right!, 8000, 1000, i, i + 160) > 0.5) {
      toneAt = i;
      break;
    }
  }
  expect(toneAt, 'the 1000 Hz tone is not in the stream').toBeGreaterThan(0);
  // The customer's tone is on the left, before the agent's starts too.
  expect(tonePower(left!, 8000, 440, Math.max(0, toneAt - 4000), toneAt)).toBeGreaterThan(0.5);
  expect(tonePower(right!, 8000, 1000, toneAt, Math.min(right!.length, toneAt + 8000))).toBeGreaterThan(0.5);
  const heardAt = receivedAt(l, toneAt + 160);
  expect(heardAt - sentAt, 'from the first packet of the tone to the listener').toBeLessThanOrEqual(3000);

  // Audited with the listener and the reason; counted; nothing left running.
  const rows = (await audit(at)).filter((r) => r.action === 'listen' && r.recordingId === id);
  expect(rows.map((r) => [r.actor, r.reason, r.details?.role])).toEqual([['sari', 'coaching', 'supervisor']]);
  expect(await metric('tallenne_listens_total', at)).toBe(before + 1);
  await until(async () => (await metric('tallenne_listens_active', at)) === 0, 'the listens to end');
  expect(readFileSync(whole).subarray(0, 4).toString('latin1')).toBe('OggS');
  // Encoded on an encoder thread, not on the capture's: the worker reports the thread it ran
  // on (node:worker_threads threadId, 0 for the main thread) and what it sent.
  const end = await ended;
  expect(end.thread).toBeGreaterThan(0);
  expect(end.bytes).toBe(l.bytes().length);
  return id;
}

describe('GET /api/v1/calls/{id}/listen', () => {
  it('streams the live call: the listener hears a tone within 3 s of it being sent, while the call runs', async () => {
    await listenerHearsTheTone(site);
  }, 90_000);

  it('streams a call from its sealed spool with encryption at rest on, and no log line holds the spool key', async () => {
    let spoolKey: Buffer | undefined;
    await listenerHearsTheTone(sealedSite, async (id) => {
      // The spool is sealed, and its key (unwrapped here from the daemon's master key file
      // to look for it) appears in nothing the daemon logged.
      const spool = join(spoolDirOf(join(sealedSite.d.dir, 'data')), `${id}.spool`);
      expect(readFileSync(spool).subarray(0, SPOOL_MAGIC_SEALED.length).equals(SPOOL_MAGIC_SEALED)).toBe(true);
      const ring = Keyring.open({ master_key_file: join(sealedSite.d.dir, 'data', 'master.key') });
      spoolKey = await spoolKeyOf(spool, id, ring);
    });
    expect(spoolKey).toBeDefined();
    const output = sealedSite.d.output();
    for (const form of [spoolKey!.toString('hex'), spoolKey!.toString('base64'), spoolKey!.toString('base64url')]) expect(output).not.toContain(form);
  }, 90_000);

  it('stops the listen on its encoder thread when the listener goes away', async () => {
    const id = (await liveCalls('q')).body.items!.find((c) => c.agentId === 'aino')!.id as string;
    const gone = 'tallenne_listens_ended_total{reason="listener_gone"}';
    const before = await metric(gone);
    const ended = listenEnded(site, id, 'listener_gone');
    const l = listen('q', id, 'quality check');
    expect(await l.status).toBe(200);
    await until(() => l.bytes().length > 0, 'the stream to start');
    expect(await metric('tallenne_listens_active')).toBe(1);
    l.req.destroy();
    // The place is given back only once the worker has stopped the stream and said so.
    await until(async () => (await metric('tallenne_listens_active')) === 0, 'the listen to stop');
    expect(await metric(gone)).toBe(before + 1);
    expect((await ended).thread).toBeGreaterThan(0);
    // The call itself goes on.
    expect((await liveCalls('q')).body.items!.map((c) => c.id)).toContain(id);
  });

  it('refuses those the policy does not allow, and audits the refusal', async () => {
    const id = (await liveCalls('q')).body.items!.find((c) => c.agentId === 'aino')!.id as string;
    const other = (await liveCalls('q')).body.items!.find((c) => c.agentId === 'cecilia')!.id as string;
    const errorOf = async (user: string, call: string, reason?: string) => {
      const q = reason !== undefined ? `?reason=${encodeURIComponent(reason)}` : '';
      const r = await fetch(`${base}/api/v1/calls/${call}/listen${q}`, { headers: { authorization: `Bearer ${tokens[user]}` } });
      return [r.status, ((await r.json()) as { error: { code: string } }).error.code];
    };
    // An agent does not listen in, not even to their own call.
    expect(await errorOf('aino', id, 'curious')).toEqual([403, 'API_FORBIDDEN']);
    // A supervisor only to their teams' calls, and only with a reason.
    expect(await errorOf('sari', other, 'coaching')).toEqual([403, 'API_FORBIDDEN']);
    expect(await errorOf('sari', id)).toEqual([403, 'API_REASON_REQUIRED']);
    expect(await errorOf('dpo', id, 'x')).toEqual([403, 'API_FORBIDDEN']);
    expect(await errorOf('q', '01NOSUCHCALL0000000000000', 'x')).toEqual([404, 'API_NOT_FOUND']);
    const denied = (await audit()).filter((r) => r.action === 'denied' && r.details?.attempted === 'listen');
    expect(denied.map((r) => [r.actor, r.recordingId])).toEqual(expect.arrayContaining([['aino', id], ['sari', other], ['sari', id], ['dpo', id]]));
    expect(await metric('tallenne_listens_active')).toBe(0);
  });

  it('tallenne calls listen writes the stream to a file until the call ends', async () => {
    const dir = tempDir('cli-listen');
    const id = (await liveCalls('q')).body.items!.find((c) => c.agentId === 'aino')!.id as string;
    const out = join(dir, 'listen.opus');
    const run = cli('calls', 'listen', id, '--out', out, '--reason', 'coaching', '--token-file', tokenFiles.sari!);
    await until(async () => (await metric('tallenne_listens_active')) === 1, 'the CLI to listen');
    await calls[0]!.hangUp();
    expect((await run).stderr).toMatch(/the call ended/);
    const [left] = decodeWithFfmpeg(out).channels;
    expect(tonePower(left!, 8000, 440, 800, Math.min(left!.length, 8000))).toBeGreaterThan(0.5);
    await expect(cli('calls', 'listen', id, '--out', out, '--token-file', tokenFiles.sari!)).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/--reason/) });
    expect(await metric('tallenne_listens_active')).toBe(0);
  }, 60_000);
});
