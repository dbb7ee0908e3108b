#!/usr/bin/env node
/**
 * Per-packet cost of SRTP unprotect against plain RTP header parsing, for 20 ms G.711
 * packets (12-octet header + 160 octets = 172 octets before the tag), one suite at a time,
 * all in one run so the ratios share the machine's state. Each round unprotects fresh
 * copies of the same protected packets with a fresh receiving session; the figure per
 * suite is the median over the rounds, in CPU time (process.cpuUsage), not wall time, so
 * other load on the machine counts less. No daemon involved. Needs `npm run build` first.
 *
 *   node bench/srtp.mjs [--packets N] [--rounds R] [--werift DIR] [--out FILE.json]
 *
 * --werift DIR loads werift-rtp from DIR (its package folder, installed outside the repo)
 * and runs its SrtpSession.decrypt over the same packets for the suites it has.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { SrtpSession } from '../dist/rtp/srtp.js';
import { SRTP_SUITES, SRTP_SUITE_NAMES } from '../dist/rtp/srtp-suites.js';
import { newRtpHeader, readRtpHeader } from '../dist/rtp/packet.js';
import { spread } from './stats.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const PACKETS = Number(opt('--packets', 20000));
const ROUNDS = Number(opt('--rounds', 9));
const WERIFT = opt('--werift', null);
const OUT = opt('--out', null);

function rtp(seq) {
  const b = Buffer.alloc(172);
  b[0] = 0x80;
  b[1] = 0;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 160) >>> 0, 4);
  b.writeUInt32BE(0x5eed1234, 8);
  for (let i = 12; i < 172; i++) b[i] = 0x55 ^ ((seq + i) & 0x7f); // A-law-ish bytes
  return b;
}

function masterKey(suite) {
  const s = SRTP_SUITES[suite];
  const bytes = Buffer.alloc(s.keyBytes + s.saltBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) & 0xff;
  return { key: bytes.subarray(0, s.keyBytes), salt: bytes.subarray(s.keyBytes) };
}


/** CPU time in ns: the machine is shared, so wall time would measure the neighbours. */
const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};

/**
 * CPU ns per packet of `fn(packet)` over fresh copies of `wire`, `passes` times over the
 * copies (only for idempotent work), median of ROUNDS after one warm-up round.
 */
function measure(wire, makeFn, passes = 1) {
  const times = [];
  for (let r = 0; r < ROUNDS + 1; r++) {
    const copies = wire.map((w) => Buffer.from(w));
    const fn = makeFn();
    const t0 = cpuNs();
    for (let k = 0; k < passes; k++) for (let i = 0; i < copies.length; i++) fn(copies[i]);
    const ns = (cpuNs() - t0) / (copies.length * passes);
    if (r > 0) times.push(ns);
  }
  return spread(times);
}

const plain = Array.from({ length: PACKETS }, (_, i) => rtp(i));
const header = newRtpHeader();
let sink = 0;
const base = measure(plain, () => (p) => {
  if (readRtpHeader(p, p.length, header) === null) sink += header.payloadLength;
}, 50);

const results = [];
for (const suite of [...SRTP_SUITE_NAMES].reverse()) {
  const policy = { suite, keys: [masterKey(suite)] };
  const tx = new SrtpSession(policy);
  const wire = plain.map((p) => tx.protectRtp(p));
  let failed = 0;
  const m = measure(wire, () => {
    const rx = new SrtpSession(policy);
    return (p) => {
      const r = rx.unprotectRtp(p);
      if (!r.ok || readRtpHeader(r.packet, r.packet.length, header) !== null) failed++;
      else sink += header.payloadLength;
    };
  });
  if (failed > 0) throw new Error(`${suite}: ${failed} packets did not unprotect`);
  results.push({ impl: 'tallenne (node:crypto)', suite, wireBytes: wire[0].length, nsPerPacket: m, ratioToPlain: m.median / base.median });
}

if (WERIFT) {
  const require = createRequire(import.meta.url);
  const w = require(WERIFT);
  const profiles = { AES_CM_128_HMAC_SHA1_80: w.ProtectionProfileAes128CmHmacSha1_80, AEAD_AES_128_GCM: w.ProtectionProfileAeadAes128Gcm };
  for (const [suite, profile] of Object.entries(profiles)) {
    const k = masterKey(suite);
    const tx = new SrtpSession({ suite, keys: [k] });
    const wire = plain.map((p) => tx.protectRtp(p));
    let failed = 0;
    const m = measure(wire, () => {
      const rx = new w.SrtpSession({
        keys: { localMasterKey: k.key, localMasterSalt: k.salt, remoteMasterKey: k.key, remoteMasterSalt: k.salt },
        profile,
      });
      return (p) => {
        try {
          sink += rx.decrypt(p).length;
        } catch {
          failed++;
        }
      };
    });
    if (failed > 0) throw new Error(`werift ${suite}: ${failed} packets did not decrypt`);
    results.push({ impl: 'werift-rtp', suite, wireBytes: wire[0].length, nsPerPacket: m, ratioToPlain: m.median / base.median });
  }
}

const load = (() => {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
  }
})();
const out = {
  what: 'SRTP unprotect vs plain RTP header parse, 20 ms G.711 (172-octet RTP packets), CPU ns per packet (process.cpuUsage), median of rounds',
  node: process.version,
  cpu: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`,
  load,
  packetsPerRound: PACKETS,
  rounds: ROUNDS,
  plainRtpParse: { nsPerPacket: base },
  srtp: results,
};
const round = (x) => Math.round(x * 10) / 10;
console.log(`plain RTP parse: ${round(base.median)} ns/packet   (${load})`);
for (const r of results) {
  console.log(
    `${r.impl.padEnd(24)} ${r.suite.padEnd(24)} ${String(round(r.nsPerPacket.median)).padStart(8)} ns/packet  ×${round(r.ratioToPlain)}  (${round(r.nsPerPacket.median * 50 / 1000)} µs per leg-second)`,
  );
}
if (OUT) writeFileSync(OUT, JSON.stringify(out, null, 2) + '\n');
if (sink === -1) console.log(sink);
