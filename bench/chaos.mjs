/**
 * The chaos mode of the bench (`npm run bench -- --chaos N`): N SIGKILLs of the real daemon
 * under sustained SIPREC load, each aimed at one phase of its work, then a restart on the same
 * data folder and a check of what the register promises. See bench/README.md, "Chaos".
 *
 * Phases a kill is aimed at (taken in turn, in a shuffled order per round):
 *   mid-call      at least half the call slots have a call up; a random moment within 2 s
 *   finalisation  a call has ended and its recording is not stored yet (spool closing,
 *                 encoding, the file's commit, the index entry, the spool's deletion)
 *   purge         back-dated expired recordings are seeded into the register, and the kill
 *                 falls inside the purge run that destroys them (the purge timer's tick plus
 *                 a random share of how long such a run took before)
 *   rotation      `tallenne keys rotate` runs and is killed together with the daemon; on only
 *                 when the CLI has that command (encryption at rest), see rotationAvailable()
 *
 * After every restart, once the spools it found are finalised, the check asks:
 *   - every call the client saw answered (200 OK) has exactly one index entry, status
 *     complete or truncated, and its audio file decodes with libopus (or the audio was purged
 *     under its short retention policy, or a destruction intent is pending for it);
 *   - no entry points at a missing file without an intent; no audio file without an entry;
 *     no encoder temp file and no spool left; no two entries for one SIP Call-ID;
 *   - `tallenne audit verify` passes.
 * The last check also waits for a purge run and requires no intent left pending.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ulid } from 'ulid';
import { openIndex } from '../dist/index/index.js';
import { FsAudioStore } from '../dist/storage/fs-store.js';
import { everyStored } from '../dist/storage/audio-store.js';
import { BenchDaemon, REPO } from './daemon.mjs';
import { Generator } from './generator.mjs';
import { SiprecClient, siprecOffer } from './sip-uac.mjs';
import { CODECS } from './audio.mjs';
import { quantile } from './stats.mjs';

const BIN = join(REPO, 'bin', 'tallenne');
/** Calls in this Acme realm fall under a retention policy whose audio expires at once. */
const SHORT_REALM = 'chaos-short';
const SHORT_POLICY = 'chaos-short';
const SEED_POLICY = 'chaos-seed';
const SEED_CALL_PREFIX = 'chaos-seed-';
const PURGE_INTERVAL_MS = 3000;
/** Back-dated expired recordings seeded before each purge kill. */
const SEED_PER_PURGE_KILL = 120;
const RECOVERY_TIMEOUT_MS = 120_000;
const HANGUP_AFTER_MEDIA_MS = 200;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rand = (a, b) => a + Math.random() * (b - a);
const round = (x, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);

async function until(pred, timeoutMs, stepMs = 5) {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) return false;
    await sleep(stepMs);
  }
  return true;
}

/** The rotation phase is on when this build's CLI has `tallenne keys rotate`. */
export function rotationAvailable() {
  const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  return /^\s*keys [^\n]*\brotate\b/m.test(`${r.stdout}${r.stderr}`);
}

function chaosToml() {
  return `
[retention]
purge_interval = "${PURGE_INTERVAL_MS / 1000}s"
[[retention.policy]]
name = "${SHORT_POLICY}"
match = { metadata = { "oracle.realm" = "${SHORT_REALM}" } }
audio = "2s"
metadata = "1 year"
`;
}

function runCli(configFile, args) {
  return spawnSync(process.execPath, [BIN, ...args, '--config', configFile], { encoding: 'utf8', timeout: 120_000 });
}

/**
 * Sustained load on one daemon life: `slots` call slots, each placing a call as soon as its
 * last one ended, with calls of a random length up to `seconds`. Every fourth call carries the
 * short-retention realm. `abort()` is the kill as the client sees it: every transaction fails,
 * every leg stops.
 */
class ChaosLoad {
  constructor(daemon, gen, o, audio, ledger, life) {
    this.gen = gen;
    this.o = o;
    this.codec = CODECS[o.codec];
    this.frames = audio.parties[0].frames;
    this.ledger = ledger;
    this.life = life;
    this.sip = new SiprecClient(daemon.sipPort);
    this.active = new Set();
    this.aborted = false;
    this.abortedP = new Promise((r) => (this.onAbort = r));
    this.stats = { offered: 0, answered: 0, rejected: 0, failed: 0, byeOk: 0 };
  }

  async start() {
    await this.sip.open();
    this.slots = Array.from({ length: this.o.calls }, (_, i) => this.slot(i));
  }

  async slot(i) {
    await Promise.race([sleep((i * 1000) / this.o.setupRate), this.abortedP]);
    while (!this.aborted) await this.one();
  }

  async one() {
    const n = this.ledger.placed++;
    const short = n % 4 === 3;
    this.stats.offered++;
    let call;
    try {
      call = await this.sip.invite(n, siprecOffer(this.codec, n, null, short ? SHORT_REALM : null));
    } catch {
      if (!this.aborted) this.stats.failed++;
      return;
    }
    if (call.status !== 200 || call.ports.length < 2) {
      this.stats.rejected++;
      await Promise.race([sleep(200), this.abortedP]);
      return;
    }
    const callId = call.dialog.callId;
    this.stats.answered++;
    this.ledger.answered.set(callId, { life: this.life, short });
    this.active.add(callId);
    if (this.aborted) return;
    const legs = [`${callId}:0`, `${callId}:1`];
    const at = performance.timeOrigin + performance.now() + 5;
    const startFrame = Math.floor(Math.random() * this.frames);
    await Promise.all([this.gen.add(legs[0], call.ports[0], 0, startFrame, at), this.gen.add(legs[1], call.ports[1], 1, startFrame, at)]);
    // A kill may have come while the legs were being added: stopAll() did not see them yet.
    if (this.aborted) return void (await Promise.all(legs.map((l) => this.gen.stop(l))));
    await Promise.race([sleep(rand(1, this.o.seconds) * 1000), this.abortedP]);
    if (this.aborted) return;
    await Promise.all(legs.map((l) => this.gen.stop(l)));
    await Promise.race([sleep(HANGUP_AFTER_MEDIA_MS), this.abortedP]);
    try {
      if ((await this.sip.bye(call.dialog)) === 200) this.stats.byeOk++;
    } catch {
      // the daemon was killed with the BYE in flight: the recording may be either status
    }
    this.active.delete(callId);
  }

  async abort() {
    this.aborted = true;
    this.onAbort();
    this.sip.abort();
    await this.gen.stopAll();
    await Promise.allSettled(this.slots);
    await this.gen.stopAll();
  }
}

/** Ended calls whose recording is not stored yet: finalisation is running. */
function finalising(d) {
  let n = 0;
  for (const id of d.ended.keys()) if (!d.stored.has(id)) n++;
  return n;
}

/**
 * Back-dated recordings for the purge: copies of a stored recording's file under new ids,
 * answered two days ago, audio expired; every other one's metadata expired too (the whole
 * recording goes). Written like the daemon writes: the file first, then the entry.
 */
async function seedExpired(dataDir, count, expiresAt) {
  const ix = await openIndex(dataDir);
  try {
    const tpl = (await ix.list({}, { limit: 50 })).items.find((e) => e.audioPurgedAt === undefined && !e.callId.startsWith(SEED_CALL_PREFIX) && e.retention?.policy !== SHORT_POLICY && existsSync(join(dataDir, e.file)));
    if (!tpl) return 0;
    const now = Date.now();
    const past = new Date(expiresAt).toISOString();
    const puts = [];
    for (let i = 0; i < count; i++) {
      const answeredAt = now - 2 * 86_400_000 + i;
      const id = ulid(answeredAt);
      const day = new Date(answeredAt).toISOString().slice(0, 10).split('-');
      const file = `recordings/${day[0]}/${day[1]}/${day[2]}/${id}.opus`;
      const path = join(dataDir, file);
      mkdirSync(dirname(path), { recursive: true });
      copyFileSync(join(dataDir, tpl.file), `${path}.seed`);
      renameSync(`${path}.seed`, path);
      const { audioPurgedAt: _p, hold: _h, ...rest } = tpl;
      puts.push(ix.put({
        ...rest, id, callId: `${SEED_CALL_PREFIX}${id}`, answeredAt,
        startedAt: new Date(answeredAt).toISOString(), endedAt: new Date(answeredAt + tpl.durationMs).toISOString(), file,
        retention: { policy: SEED_POLICY, audioExpiresAt: past, metadataExpiresAt: i % 2 === 0 ? past : new Date(now + 365 * 86_400_000).toISOString() },
      }));
    }
    await Promise.all(puts);
    return count;
  } finally {
    await ix.close();
  }
}

/**
 * Decodes a recording with libopus: `opusdec` (opus-tools, the reference decoder; a quarter of
 * ffmpeg's start-up cost on a busy box, which matters at a hundred checks). Resolves null when
 * it decodes cleanly, else the error.
 */
function decodeProblem(path) {
  return new Promise((resolve) => {
    execFile('opusdec', ['--quiet', path, '/dev/null'], (err, _out, stderr) => {
      if (err) resolve(`opusdec: ${String(err.message).trim().slice(0, 200)}`);
      else resolve(String(stderr).trim() === '' ? null : String(stderr).trim().slice(0, 200));
    });
  });
}

/**
 * With encryption at rest (the build that has `keys rotate`) the file on disk is ciphertext:
 * the recording is exported as plain Ogg Opus through the storage seam, which decrypts, and
 * that is decoded.
 */
async function exportedDecodeProblem(run, id) {
  const out = join(run.dir, `export-${id}.opus`);
  try {
    const r = runCli(run.configFile, ['recordings', 'export', id, '--out', out, '--format', 'opus']);
    if (r.status !== 0) return `export: ${`${r.stdout}${r.stderr}`.trim().slice(0, 200)}`;
    return await decodeProblem(out);
  } finally {
    rmSync(out, { force: true });
  }
}

/** Runs the jobs `width` at a time. */
async function inParallel(jobs, width) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
}

/** Audio keys, through the daemon's own store, and staged or temporary files (dot files) left among them. */
async function audioFiles(dataDir) {
  const files = [];
  for await (const i of everyStored(new FsAudioStore(dataDir))) files.push(i.key);
  const temps = readdirSync(join(dataDir, 'recordings'), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.startsWith('.'))
    .map((d) => join(d.parentPath ?? d.path, d.name));
  return { files, temps };
}

/**
 * The invariants, against the register as it is now (the daemon runs; no call is up). The
 * purge may destroy something while this reads: a doubt is settled by reading the entry, its
 * intent and the file again before it counts as a violation.
 */
async function check(run, { final = false, cli = final } = {}) {
  const { dataDir, configFile, ledger, verified } = run;
  const violations = [];
  const add = (kind, detail) => violations.push({ kind, detail });
  const spools = readdirSync(join(dataDir, 'spool')).filter((n) => n.endsWith('.spool'));
  if (spools.length > 0) add('spool-left', `${spools.length} spools after recovery`);
  const counts = { entries: 0, complete: 0, truncated: 0, audioPurged: 0, pendingIntents: 0, decoded: 0, seeded: 0, seededWaiting: 0, answeredUnseen: 0 };
  /** Findings that a purge run under way could explain: settled against a new snapshot below. */
  const doubts = [];
  const decodes = [];
  const ix = await openIndex(dataDir);
  try {
    const entries = [];
    let cursor;
    do {
      const page = await ix.list({}, cursor === undefined ? { limit: 5000 } : { cursor, limit: 5000 });
      entries.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    counts.entries = entries.length;
    const byId = new Map(entries.map((e) => [e.id, e]));
    const byCall = new Map();
    for (const e of entries) byCall.set(e.callId, [...(byCall.get(e.callId) ?? []), e]);
    const intents = new Map((await ix.intents(1_000_000)).map((x) => [x.id, x.intent]));
    counts.pendingIntents = intents.size;
    if (final && intents.size > 0) add('intent-not-completed', `${intents.size} destruction intents still pending after a purge run`);

    for (const [callId, list] of byCall) if (list.length > 1) add('duplicate', `${list.length} entries for one Call-ID (${list.map((e) => e.id).join(', ')})`);
    for (const [callId, call] of ledger.answered) {
      const list = byCall.get(callId);
      if (!list) add('missing', `answered call of life ${call.life} has no entry`);
      else if (list[0].audioPurgedAt !== undefined && !call.short) add('purged-early', `${list[0].id} lost its audio under policy ${list[0].retention?.policy}`);
    }
    for (const e of entries) {
      const seeded = e.callId.startsWith(SEED_CALL_PREFIX);
      if (seeded) counts.seeded++;
      else if (!ledger.answered.has(e.callId)) counts.answeredUnseen++;
      if (e.status === 'complete') counts.complete++;
      else if (e.status === 'truncated') counts.truncated++;
      else add('bad-status', `${e.id}: ${e.status}`);
      if (e.audioPurgedAt !== undefined) {
        counts.audioPurged++;
        continue;
      }
      const path = join(dataDir, e.file);
      if (!existsSync(path)) {
        doubts.push(async (x) => {
          const again = await x.get(e.id);
          if (again && again.audioPurgedAt === undefined && !(await x.getIntent(e.id))) add('file-missing', `${e.id}: ${e.file}`);
        });
        continue;
      }
      if (seeded) {
        counts.seededWaiting++;
        continue; // copies of a file already decoded
      }
      const size = statSync(path).size;
      if (verified.get(e.id) === size) continue;
      decodes.push(async () => {
        const problem = run.rotation ? await exportedDecodeProblem(run, e.id) : await decodeProblem(path);
        if (problem && existsSync(path)) add('undecodable', `${e.id}: ${problem}`);
        else {
          verified.set(e.id, size);
          counts.decoded++;
        }
      });
    }
    await inParallel(decodes, 3);
    // The same verification `tallenne audit verify` runs; the command itself runs below at
    // every tenth check and at the end (a process start costs seconds on a loaded box).
    const verdict = await ix.audit.verify();
    if (!verdict.ok) add('audit', `broken at entry ${verdict.at}: ${verdict.problem}`);
    const { files, temps } = await audioFiles(dataDir);
    for (const t of temps) add('temp-left', t);
    for (const key of files) {
      const id = basename(key, '.opus');
      const e = byId.get(id);
      if (e && e.file === key && e.audioPurgedAt === undefined) continue;
      if (intents.has(id)) continue;
      doubts.push(async (x) => {
        const again = await x.get(id);
        if (existsSync(join(dataDir, key)) && !(await x.getIntent(id)) && !(again && again.file === key && again.audioPurgedAt === undefined)) add('orphan', key);
      });
    }
  } finally {
    await ix.close();
  }
  if (doubts.length > 0) {
    // Read again in a new snapshot, after the purge run that may have been under way.
    await sleep(200);
    const again = await openIndex(dataDir);
    try {
      for (const d of doubts) await d(again);
    } finally {
      await again.close();
    }
  }
  if (cli) {
    const audit = runCli(configFile, ['audit', 'verify']);
    if (audit.status !== 0) add('audit-cli', `${audit.stdout}${audit.stderr}`.trim().slice(0, 300));
  }
  return { violations, counts };
}

/** Starts (or restarts) the daemon and waits until the spools it found are finalised. */
async function startLife(run, first) {
  const t0 = Date.now();
  const d = await BenchDaemon.start(first
    ? { ...run.daemonOptions, extra: chaosToml() }
    : { dir: run.dir });
  const readyMs = d.readyAt - d.spawnedAt;
  run.dir = d.dir;
  run.dataDir = join(d.dir, 'data');
  run.configFile = d.configFile;
  const done = await until(() => [...d.recovering].every((id) => d.stored.has(id)) && readdirSync(join(run.dataDir, 'spool')).every((n) => !n.endsWith('.spool')), RECOVERY_TIMEOUT_MS, 20);
  const recovered = [...d.recovering];
  return {
    d,
    recovery: {
      readyMs,
      finishedMs: done ? Date.now() - t0 : null,
      spools: recovered.length,
      truncated: recovered.filter((id) => d.stored.get(id)?.status === 'truncated').length,
      complete: recovered.filter((id) => d.stored.get(id)?.status === 'complete').length,
      failed: done ? 0 : recovered.filter((id) => !d.stored.has(id)).length,
    },
  };
}

/** Waits for the moment to kill in `phase`; returns what was seen then. */
async function aim(phase, run, d, load) {
  if (phase === 'mid-call') {
    await until(() => load.active.size >= Math.ceil(run.o.calls / 2), 30_000, 20);
    await sleep(rand(0, 2000));
    return {};
  }
  if (phase === 'finalisation') {
    await until(() => load.active.size >= 1, 30_000, 20);
    const hit = await until(() => finalising(d) > 0, 30_000, 2);
    await sleep(rand(0, 20));
    return { finalisingSeen: hit };
  }
  if (phase === 'purge') {
    // The seeded recordings expire a moment from now, so the purge finds them all in one run;
    // the purge timer started just before "tallenne ready", so its runs fall on ready + k ×
    // interval. The kill falls at a random point of the first run after the expiry.
    // The seeds copy a stored recording's file: the first life may have to wait for one.
    let seeded = 0;
    let expiresAt = 0;
    for (let tries = 0; seeded === 0 && tries < 100; tries++) {
      if (tries > 0) await sleep(200);
      expiresAt = Date.now() + 1500;
      seeded = await seedExpired(run.dataDir, SEED_PER_PURGE_KILL, expiresAt);
    }
    const now = Date.now();
    const from = Math.max(now, expiresAt) + 20;
    const tick = d.readyAt + Math.ceil((from - d.readyAt) / PURGE_INTERVAL_MS) * PURGE_INTERVAL_MS;
    await sleep(tick - now + rand(0.05, 0.95) * run.purgeRunMs);
    return { seeded, seededWaitingBefore: run.seededWaiting + seeded };
  }
  if (phase === 'rotation') {
    const rotate = spawn(process.execPath, [BIN, 'keys', 'rotate', '--config', run.configFile], { stdio: 'ignore' });
    await sleep(rand(20, 1500));
    const running = rotate.exitCode === null;
    rotate.kill('SIGKILL');
    await new Promise((r) => (rotate.exitCode !== null || rotate.signalCode !== null ? r() : rotate.once('exit', r)));
    return { rotationRunning: running };
  }
  throw new Error(`unknown chaos phase ${phase}`);
}

/** Recordings decoded again, through the export, after each rotation kill. */
const REDECODE_AFTER_ROTATION = 20;

/**
 * After a rotation kill: the rotation is run again to its end (it resumes an unfinished one).
 * Then every recording's data key must be wrapped under the current master key, and every key
 * a recording names must still be held (`tallenne keys list --json`). A sample of the
 * recordings decoded before is forgotten, so the check decodes them again through the export
 * under the new key. Decoding all of them after every rotation would make the run's length
 * grow with the square of its kills.
 */
function afterRotation(run, add) {
  const r = runCli(run.configFile, ['keys', 'rotate']);
  if (r.status !== 0) add('rotation-resume', `${r.stdout}${r.stderr}`.trim().slice(0, 300));
  const l = runCli(run.configFile, ['keys', 'list', '--json']);
  if (l.status !== 0) {
    add('rotation-keys', `keys list: ${`${l.stdout}${l.stderr}`.trim().slice(0, 300)}`);
    return;
  }
  for (const u of JSON.parse(l.stdout)) {
    if (!u.held && u.recordings > 0) add('rotation-keys', `${u.recordings} recordings name master key ${u.keyId}, which the key file no longer holds`);
    if (!u.current && u.recordings > 0) add('rotation-keys', `${u.recordings} recordings still wrapped under ${u.keyId} after the rotation finished`);
  }
  const ids = [...run.verified.keys()];
  for (let i = 0; i < REDECODE_AFTER_ROTATION && ids.length > 0; i++) {
    run.verified.delete(ids.splice(Math.floor(Math.random() * ids.length), 1)[0]);
  }
}

/** How long a purge run with seeded work took (log line time minus its timer tick), for aiming. */
function learnPurgeRun(run, d) {
  for (const p of d.purgeRuns) {
    if (p.audio + p.metadata + p.resumed < 20) continue;
    const took = (p.time - d.readyAt) % PURGE_INTERVAL_MS;
    if (took > 0) run.purgeRunMs = Math.max(50, Math.min(PURGE_INTERVAL_MS - 100, took));
  }
}

export async function runChaos(o, audio) {
  const phases = ['mid-call', 'finalisation', 'purge'];
  const rotation = rotationAvailable();
  if (rotation) phases.push('rotation');
  const maxCalls = o.calls;
  const daemonOptions = {
    portMin: 20000, portMax: Math.min(65535, 20000 + 4 * maxCalls + 400), maxCalls: maxCalls + 10,
    complexity: o.complexity, bitrate: o.bitrate, skipSilence: o.skipSilence, workers: o.workers,
  };
  const gen = Generator.fromOptions(o, audio, CODECS[o.codec]);
  const run = { o, rotation, daemonOptions, ledger: { placed: 0, answered: new Map() }, verified: new Map(), purgeRunMs: 400, seededWaiting: 0 };
  const kills = [];
  const checks = [];
  const t0 = Date.now();
  let order = [];
  let life = await startLife(run, true);
  const loadTotals = { offered: 0, answered: 0, rejected: 0, failed: 0, byeOk: 0 };
  try {
    for (let k = 1; k <= o.chaos; k++) {
      if (order.length === 0) order = phases.map((p) => [Math.random(), p]).sort((a, b) => a[0] - b[0]).map(([, p]) => p);
      const phase = order.pop();
      const d = life.d;
      const load = new ChaosLoad(d, gen, o, audio, run.ledger, k);
      const aimFrom = Date.now();
      await load.start();
      const seen = await aim(phase, run, d, load);
      seen.aimMs = Date.now() - aimFrom;
      const at = { inFlightCalls: load.active.size, finalising: finalising(d), lifeMs: Date.now() - d.readyAt };
      await d.kill();
      await load.abort();
      for (const [key, v] of Object.entries(load.stats)) loadTotals[key] += v;
      learnPurgeRun(run, d);
      const purgeRuns = d.purgeRuns.map((p) => ({ atMs: p.time - d.readyAt, audio: p.audio, metadata: p.metadata, resumed: p.resumed }));
      life = await startLife(run, false);
      const resumed = [];
      if (phase === 'rotation') afterRotation(run, (kind, detail) => resumed.push({ kind, detail }));
      const checkFrom = Date.now();
      const c = await check(run, { cli: k % 10 === 0 });
      c.violations.push(...resumed);
      c.counts.checkMs = Date.now() - checkFrom;
      const inPurgeRun = seen.seeded > 0 ? c.counts.pendingIntents > 0 || (c.counts.seededWaiting > 0 && c.counts.seededWaiting < seen.seededWaitingBefore) : undefined;
      run.seededWaiting = c.counts.seededWaiting;
      const kill = { k, phase, checkMs: c.counts.checkMs, ...seen, ...(inPurgeRun !== undefined ? { inPurgeRun } : {}), ...at, purgeRunsInLife: purgeRuns, recovery: life.recovery, pendingIntentsAfter: c.counts.pendingIntents, violations: c.violations };
      kills.push(kill);
      checks.push(c.counts);
      console.error(`kill ${k}/${o.chaos} ${phase}: ${at.inFlightCalls} calls up, ${at.finalising} finalising; ready in ${life.recovery.readyMs} ms, ${life.recovery.spools} spools recovered (${life.recovery.truncated} truncated) in ${life.recovery.finishedMs} ms; intents pending ${c.counts.pendingIntents}; aimed ${seen.aimMs} ms, checked in ${c.counts.checkMs} ms; violations ${c.violations.length}${c.violations.length ? ` ${JSON.stringify(c.violations.slice(0, 3))}` : ''}`);
    }
    // The last life: a purge run completes any destruction a kill left half done.
    const runs = life.d.purgeRuns.length;
    const tick = Date.now();
    await until(() => life.d.purgeRuns.length > runs || Date.now() - tick > 2.5 * PURGE_INTERVAL_MS, 3 * PURGE_INTERVAL_MS, 50);
    const last = await check(run, { final: true });
    checks.push(last.counts);
    return summarise(o, rotation, phases, kills, last, loadTotals, run, t0);
  } finally {
    await life.d.stop();
    await gen.close();
    if (!o.keepData) life.d.remove();
  }
}

function summarise(o, rotation, phases, kills, last, loadTotals, run, t0) {
  const byPhase = {};
  for (const p of phases) {
    const ks = kills.filter((k) => k.phase === p);
    byPhase[p] = {
      kills: ks.length,
      inFlightCallsMean: round(ks.reduce((s, k) => s + k.inFlightCalls, 0) / Math.max(1, ks.length)),
      spoolsRecovered: ks.reduce((s, k) => s + k.recovery.spools, 0),
      truncated: ks.reduce((s, k) => s + k.recovery.truncated, 0),
      ...(p === 'finalisation' ? { landedWithFinalisationRunning: ks.filter((k) => k.finalising > 0).length, recoveredComplete: ks.reduce((s, k) => s + k.recovery.complete, 0) } : {}),
      ...(p === 'purge' ? { landedInPurgeRun: ks.filter((k) => k.inPurgeRun).length, landedMidDestruction: ks.filter((k) => k.pendingIntentsAfter > 0).length, seeded: ks.reduce((s, k) => s + (k.seeded ?? 0), 0) } : {}),
      ...(p === 'rotation' ? { landedWithRotationRunning: ks.filter((k) => k.rotationRunning).length } : {}),
    };
  }
  const ready = kills.map((k) => k.recovery.readyMs);
  const finished = kills.map((k) => k.recovery.finishedMs).filter((x) => x !== null);
  const violations = [...kills.flatMap((k) => k.violations.map((v) => ({ k: k.k, ...v }))), ...last.violations.map((v) => ({ k: 'final', ...v }))];
  const byKind = {};
  for (const v of violations) byKind[v.kind] = (byKind[v.kind] ?? 0) + 1;
  return {
    kills: kills.length,
    options: { calls: o.calls, maxCallSeconds: o.seconds, codec: o.codec, purgeIntervalMs: PURGE_INTERVAL_MS, seedPerPurgeKill: SEED_PER_PURGE_KILL },
    rotationPhase: rotation ? 'on' : 'off: this build has no `tallenne keys rotate`',
    load: loadTotals,
    answeredCalls: run.ledger.answered.size,
    final: last.counts,
    byPhase,
    recovery: {
      readyMs: { p50: quantile(ready, 0.5), p99: quantile(ready, 0.99), max: Math.max(...ready) },
      finishedMs: { p50: quantile(finished, 0.5), p99: quantile(finished, 0.99), max: Math.max(...finished) },
      spoolsRecovered: kills.reduce((s, k) => s + k.recovery.spools, 0),
      truncated: kills.reduce((s, k) => s + k.recovery.truncated, 0),
      truncatedPerKillMean: round(kills.reduce((s, k) => s + k.recovery.truncated, 0) / Math.max(1, kills.length), 2),
      failed: kills.reduce((s, k) => s + k.recovery.failed, 0),
    },
    inFlightCallsPerKill: { mean: round(kills.reduce((s, k) => s + k.inFlightCalls, 0) / Math.max(1, kills.length)), max: Math.max(0, ...kills.map((k) => k.inFlightCalls)) },
    violations: { total: violations.length, byKind, first: violations.slice(0, 20) },
    wallSeconds: round((Date.now() - t0) / 1000),
    perKill: kills,
  };
}

/** The markdown table of a chaos result. */
export function chaosReport(c) {
  const out = [];
  out.push(`chaos: ${c.kills} SIGKILLs under ${c.options.calls} call slots (calls of 1–${c.options.maxCallSeconds} s), ${c.answeredCalls} calls answered, ${c.wallSeconds} s`);
  out.push(`rotation phase: ${c.rotationPhase}`);
  out.push('', '| phase | kills | calls up at kill (mean) | spools recovered | truncated | landed in the phase |', '|---|---|---|---|---|---|');
  for (const [p, s] of Object.entries(c.byPhase)) {
    const landed = s.landedWithFinalisationRunning ?? s.landedInPurgeRun ?? s.landedWithRotationRunning ?? s.kills;
    out.push(`| ${p} | ${s.kills} | ${s.inFlightCallsMean} | ${s.spoolsRecovered} | ${s.truncated} | ${landed} of ${s.kills} |`);
  }
  const r = c.recovery;
  out.push('', `recovery: start to ready p50 ${r.readyMs.p50} ms, p99 ${r.readyMs.p99} ms, max ${r.readyMs.max} ms; every left spool finalised p50 ${r.finishedMs.p50} ms, max ${r.finishedMs.max} ms (from the restart)`);
  out.push(`spools recovered ${r.spoolsRecovered}, of them truncated ${r.truncated} (${r.truncatedPerKillMean} per kill), failed ${r.failed}`);
  const f = c.final;
  out.push(`register at the end: ${f.entries} entries (${f.complete} complete, ${f.truncated} truncated), ${f.audioPurged} with audio purged, ${f.seeded} seeded entries left, ${f.pendingIntents} intents pending`);
  out.push(`violations: ${c.violations.total}${c.violations.total ? ` ${JSON.stringify(c.violations.byKind)}` : ' (no lost, duplicate or undecodable recording, no orphan, no spool or temp file left, audit chain verified after every restart)'}`);
  return out.join('\n');
}
