#!/usr/bin/env node
/**
 * Per-record cost of sealing the spool (AES-256-GCM per block of records, src/spool/cipher.ts)
 * against the plain spool, in one run so the ratio shares the machine's state:
 *   - append: SpoolWriter.appendPacket on the capture path, 20 ms G.711 packets (172 octets),
 *     with a flush every --flush-every records (default 20: the call manager flushes every
 *     200 ms, and a two-leg call brings 20 packets in that time), so blocks are as in a call;
 *   - read: readSpool over the same file in the encoder (per record, payload handed on).
 * Each round writes a fresh spool of N records in a temp folder; the figure is the median
 * over the rounds of CPU time per record (process.cpuUsage: the machine is shared), the
 * background file writes included for both. Needs `npm run build` first.
 *
 *   node bench/spool-crypto.mjs [--records N] [--rounds R] [--flush-every K] [--out FILE.json]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { SpoolWriter } from '../dist/spool/writer.js';
import { readSpool, spoolKeyOf } from '../dist/spool/reader.js';
import { RecordType } from '../dist/spool/format.js';
import { newSpoolKey } from '../dist/spool/cipher.js';
import { Keyring } from '../dist/crypto/keyring.js';
import { spread } from './stats.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const RECORDS = Number(opt('--records', 20000));
const ROUNDS = Number(opt('--rounds', 7));
const OUT = opt('--out', null);
const FLUSH_EVERY = Number(opt('--flush-every', 20));

const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};
const stats = (xs) => spread(xs);

const packet = Buffer.alloc(172);
packet[0] = 0x80;
for (let i = 12; i < packet.length; i++) packet[i] = 0x55 ^ (i & 0x7f);

const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-spool-crypto-'));
const ring = Keyring.open({ master_key_file: join(dir, 'master.key') });
const times = { plain: { append: [], read: [] }, sealed: { append: [], read: [] } };
let n = 0;
try {
  for (let r = 0; r < ROUNDS + 1; r++) {
    // Alternate which kind goes first, so neither always runs on a warmer cache.
    const kinds = r % 2 === 0 ? ['plain', 'sealed'] : ['sealed', 'plain'];
    for (const kind of kinds) {
      const id = `r${r}-${kind}`;
      const path = join(dir, `${id}.spool`);
      const w = new SpoolWriter(path, kind === 'sealed' ? newSpoolKey(ring, id) : undefined);
      let t0 = cpuNs();
      for (let i = 0; i < RECORDS; i++) {
        packet.writeUInt16BE(i & 0xffff, 2);
        w.appendPacket(RecordType.Rtp, i & 1, 1_700_000_000_000 + i * 10, packet);
        if (i % FLUSH_EVERY === FLUSH_EVERY - 1) w.flush();
      }
      await w.drain();
      const append = (cpuNs() - t0) / RECORDS;
      await w.close(null);

      const key = kind === 'sealed' ? await spoolKeyOf(path, id, ring) : undefined;
      t0 = cpuNs();
      const res = await readSpool(path, (rec) => {
        n += rec.payload[1];
      }, { key });
      const read = (cpuNs() - t0) / RECORDS;
      if (res.records !== RECORDS || res.rejected !== 0) throw new Error(`${kind}: read ${res.records} records, ${res.rejected} rejected`);
      rmSync(path);
      if (r > 0) {
        times[kind].append.push(append);
        times[kind].read.push(read);
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const load = (() => {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
  }
})();
const result = {
  what: 'spool records sealed (AES-256-GCM per block of --flush-every records) vs plain: CPU ns per 172-octet RTP record, append (capture) and read (encoder), median of rounds',
  flushEvery: FLUSH_EVERY,
  node: process.version,
  cpu: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`,
  load,
  recordsPerRound: RECORDS,
  rounds: ROUNDS,
  plain: { append: stats(times.plain.append), read: stats(times.plain.read) },
  sealed: { append: stats(times.sealed.append), read: stats(times.sealed.read) },
};
result.ratio = {
  append: result.sealed.append.median / result.plain.append.median,
  read: result.sealed.read.median / result.plain.read.median,
};
const f = (x) => Math.round(x * 10) / 10;
console.log(`(${load})`);
for (const op of ['append', 'read']) {
  console.log(`${op.padEnd(7)} plain ${String(f(result.plain[op].median)).padStart(8)} ns/record   sealed ${String(f(result.sealed[op].median)).padStart(8)} ns/record   ×${f(result.ratio[op])}   (+${f(((result.sealed[op].median - result.plain[op].median) * 50) / 1000)} µs per leg-second)`);
}
if (OUT) writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
if (n === -1) console.log(n);
