/**
 * Index at scale: fills a fresh register, LMDB or PostgreSQL (`--index postgres`; the
 * daemon's own src/index, built to dist/), with
 * N synthetic recordings spread over a year, 200 agents in 20 teams, 10 service numbers and
 * 100,000 distinct customers, then times the list queries the API and the CLI run: the latest
 * page, a page by agent, by team, by service number, by customer number hash, a time window,
 * and paging on with a cursor. Reports p50/p99 per query kind in milliseconds.
 *
 * Entries are synthetic and carry no real number: the masked number and the hash are made
 * from the customer's index.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { prng } from './audio.mjs';

const YEAR_MS = 365 * 24 * 3600 * 1000;
const BATCH = 5000;
const PG_BATCH = 2000;

const customerHashes = new Map();
function customerHash(customer) {
  let h = customerHashes.get(customer);
  if (h === undefined) customerHashes.set(customer, (h = createHash('sha256').update(`bench-customer-${customer}`).digest('hex')));
  return h;
}

/**
 * Synthetic recording `i` of the bench's seeded sequence (also used by bench/storage-compare.mjs).
 * With `of` (the sequence's length) recording i starts in the i-th of `of` equal slots of the
 * year: the recordings come in time order, as a register fills when calls end. PostgreSQL then
 * keeps a day's rows on neighbouring heap pages, as it does on a real site (a random order
 * spreads each day's 50 rows over 50 pages, a case no register meets).
 */
export function entry(i, t0, rnd, of = 0) {
  const start = of > 0 ? t0 + Math.floor(((i + rnd()) * YEAR_MS) / of) : t0 + Math.floor(rnd() * YEAR_MS);
  const durationMs = 30_000 + Math.floor(rnd() * 600_000);
  const agent = Math.floor(rnd() * 200);
  const customer = Math.floor(rnd() * 100_000);
  const id = `${start.toString(36).toUpperCase().padStart(10, '0')}${i.toString(36).toUpperCase().padStart(16, '0')}`;
  const day = new Date(start).toISOString().slice(0, 10).replace(/-/g, '/');
  return {
    id, callId: `bench-${i}`, siprec: true, answeredAt: start, direction: 'inbound',
    customerNumber: `+35840${String(customer).padStart(4, '0')}***`,
    customerNumberHash: customerHash(customer),
    serviceNumber: `+3582000${i % 10}`, agentId: `agent${agent}`, agentName: `Agent ${agent}`, team: `team${agent % 20}`,
    participants: [], startedAt: new Date(start).toISOString(), endedAt: new Date(start + durationMs).toISOString(), durationMs,
    status: 'complete', endReason: 'bye', legs: [], pauses: [], dtmf: [], file: `recordings/${day}/${id}.opus`, fileBytes: durationMs * 3,
    sampleRate: 8000, channels: 2,
    retention: { policy: 'default', audioExpiresAt: new Date(start + YEAR_MS / 2).toISOString(), metadataExpiresAt: new Date(start + 3 * YEAR_MS).toISOString() },
  };
}

function* entries(n, t0) {
  const rnd = prng(11);
  for (let i = 0; i < n; i++) yield entry(i, t0, rnd, n);
}

/**
 * Puts `n` synthetic recordings into an open index (the same seeded sequence every
 * time): a year from `t0`, 200 agents (`agent0`..) in 20 teams (`team0`..), 10 service
 * numbers, 100,000 customers whose hash is SHA-256 of `bench-customer-<n>`.
 */
export async function fillIndex(index, n, t0) {
  let puts = [];
  for (const e of entries(n, t0)) {
    puts.push(index.put(e));
    if (puts.length === BATCH) await Promise.all(puts.splice(0));
  }
  await Promise.all(puts);
}

/**
 * The same recordings into a PostgreSQL register in bulk: batches of PG_BATCH rows, each one
 * statement of the register's own batch writer (src/index/postgres/recordings.ts
 * writeRecordings, the one `index copy` uses) in its own transaction, two at a time.
 */
async function fillPostgres(repo, url, n, t0) {
  const { openPool, transaction } = await import(join(repo, 'dist', 'index', 'postgres', 'pool.js'));
  const { writeRecordings } = await import(join(repo, 'dist', 'index', 'postgres', 'recordings.js'));
  const db = openPool(url, 2);
  try {
    const inFlight = new Set();
    let batch = [];
    const flush = async () => {
      const rows = batch;
      batch = [];
      const p = transaction(db, (tx) => writeRecordings(tx, rows)).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= 2) await Promise.race(inFlight);
    };
    for (const e of entries(n, t0)) {
      batch.push(e);
      if (batch.length === PG_BATCH) await flush();
    }
    if (batch.length > 0) await flush();
    await Promise.all(inFlight);
    // The state autovacuum keeps a register in that grew over a year: planner statistics,
    // hint bits and the visibility map set, and the bulk load's dirty pages written out (else
    // the first queries to touch each page write it, and autovacuum runs under them).
    await db.query('VACUUM (ANALYZE) recordings');
    await db.query('CHECKPOINT');
  } finally {
    await db.end();
  }
}

export function quantiles(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * 1000) / 1000;
  return { p50: q(0.5), p99: q(0.99), n: s.length };
}

/**
 * A fresh register of the backend asked for: LMDB in a temp folder, or PostgreSQL (the
 * database at `url`, migrated, which must be empty; else a throwaway server of our own).
 */
async function openBenchIndex(repo, backend, url) {
  if (backend === 'lmdb') {
    const { openIndex } = await import(join(repo, 'dist', 'index', 'index.js'));
    const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-index-'));
    return { index: await openIndex(dir), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }
  if (backend !== 'postgres') throw new Error('--index must be lmdb or postgres');
  const { migratePostgres, openPostgresIndex } = await import(join(repo, 'dist', 'index', 'postgres', 'open.js'));
  const { startBenchPostgres } = await import('./postgres-server.mjs');
  const server = url ? undefined : await startBenchPostgres();
  try {
    await migratePostgres(url ?? server.url);
    const index = await openPostgresIndex({ url: url ?? server.url, poolSize: 16, node: 'bench' });
    if ((await index.count()) > 0) throw new Error('the --index-url database already holds recordings: give an empty one');
    return { index, fill: (n, t0) => fillPostgres(repo, url ?? server.url, n, t0), cleanup: () => server?.stop() };
  } catch (e) {
    server?.stop();
    throw e;
  }
}

export async function measureIndex(repo, entries, queriesPerKind = 300, backend = 'lmdb', url = undefined) {
  const { index, fill, cleanup } = await openBenchIndex(repo, backend, url);
  try {
    const t0 = Date.UTC(2025, 0, 1);
    const fillStart = performance.now();
    await fill(entries, t0);
    const fillSeconds = (performance.now() - fillStart) / 1000;
    const q = prng(12);
    const kinds = {
      latest: () => ({}),
      byAgent: () => ({ agentId: `agent${Math.floor(q() * 200)}` }),
      byTeam: () => ({ team: `team${Math.floor(q() * 20)}` }),
      byServiceNumber: () => ({ serviceNumber: `+3582000${Math.floor(q() * 10)}` }),
      byNumberHash: () => ({ numberHash: createHash('sha256').update(`bench-customer-${Math.floor(q() * 100_000)}`).digest('hex') }),
      timeWindow: () => {
        const from = t0 + Math.floor(q() * (YEAR_MS - 86_400_000));
        return { from, to: from + 86_400_000 };
      },
    };
    const out = { backend, entries: await index.count(), fillSeconds: Math.round(fillSeconds * 10) / 10, queries: {} };
    for (const [name, make] of Object.entries(kinds)) {
      const times = [];
      let items = 0;
      for (let r = 0; r < queriesPerKind; r++) {
        const query = make();
        const a = performance.now();
        const page = await index.list(query, { limit: 50 });
        times.push(performance.now() - a);
        items += page.items.length;
      }
      out.queries[name] = { ...quantiles(times), meanItems: Math.round(items / queriesPerKind) };
    }
    // Paging deep into the latest list with cursors: 20 pages of 50.
    const pageTimes = [];
    let cursor;
    for (let r = 0; r < 20; r++) {
      const a = performance.now();
      const page = await index.list({}, { limit: 50, ...(cursor ? { cursor } : {}) });
      pageTimes.push(performance.now() - a);
      cursor = page.nextCursor;
    }
    out.queries.nextPage = quantiles(pageTimes);
    // The count every metrics scrape reads (tallenne_recordings_stored).
    const countTimes = [];
    for (let r = 0; r < queriesPerKind; r++) {
      const a = performance.now();
      await index.count();
      countTimes.push(performance.now() - a);
    }
    out.queries.count = quantiles(countTimes);
    await index.close();
    return out;
  } finally {
    await cleanup();
  }
}

/**
 * CPU of one index write as the finaliser makes it (one entry per transaction, awaited):
 * `n` puts into a fresh index, this process's CPU (LMDB's write thread included) per put.
 */
export async function measurePutCost(repo, n = 300) {
  const { openIndex } = await import(join(repo, 'dist', 'index', 'index.js'));
  const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-index-'));
  try {
    const index = await openIndex(dir);
    const rnd = prng(13);
    const t0 = Date.UTC(2025, 0, 1);
    // A few first, unmeasured: JIT and the first pages of the file.
    for (let i = 0; i < 20; i++) await index.put(entry(i, t0, rnd));
    const c0 = process.cpuUsage();
    for (let i = 20; i < 20 + n; i++) await index.put(entry(i, t0, rnd));
    const c = process.cpuUsage(c0);
    await index.close();
    return { puts: n, cpuUsPerPut: Math.round((c.user + c.system) / n) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
