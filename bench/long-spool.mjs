/**
 * The encoder's memory does not depend on call length: writes a synthetic spool of an
 * H-hour two-leg PCMU call (the bench's conversational audio, looped, written with the
 * daemon's SpoolWriter in arrival order) and encodes it with the daemon's encodeSpool in a
 * child process, whose peak RSS (VmHWM) is then its own.
 *
 *   node bench/long-spool.mjs --child SPOOL STORAGE COMPLEXITY BITRATE   (internal)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CODECS, encodePayloads, synthConversation } from './audio.mjs';

const SELF = fileURLToPath(import.meta.url);

/** The META of a synthetic two-leg PCMU call answered at `answeredAt`. */
export function benchSpoolMeta(id, answeredAt) {
  const fmt = { pt: 0, codec: 'PCMU', clockRate: 8000, channels: 1 };
  return {
    id, callId: `bench-${id}`, siprec: true, answeredAt, direction: 'inbound', participants: [],
    legs: [
      { index: 0, label: '1', role: 'customer', channel: 0, formats: [fmt] },
      { index: 1, label: '2', role: 'agent', channel: 1, formats: [fmt] },
    ],
  };
}

/** The bench's audio of `kind` (audio.mjs) as PCMU payloads of the two parties. */
export function benchParties(kind) {
  return synthConversation(kind, 8000, 60).map((p) => {
    const t = encodePayloads('pcmu', p);
    return { frames: t.frames, data: Buffer.from(t.data), offsets: new Int32Array(t.offsets) };
  });
}

/** Appends 20 ms frames [from, to) of both legs to SpoolWriter `w`, in arrival order. */
export function appendBenchFrames(w, rtpType, parties, answeredAt, from, to) {
  const pkt = Buffer.alloc(12 + 160);
  pkt[0] = 0x80;
  for (let n = from; n < to; n++) {
    for (let leg = 0; leg < 2; leg++) {
      const t = parties[leg];
      const f = n % t.frames;
      pkt.writeUInt16BE(n & 0xffff, 2);
      pkt.writeUInt32BE((n * 160) >>> 0, 4);
      pkt.writeUInt32BE(0x1000 + leg, 8);
      t.data.copy(pkt, 12, t.offsets[f], t.offsets[f + 1]);
      w.appendPacket(rtpType, leg, answeredAt + n * 20 + 1 + leg * 0.3, pkt);
    }
  }
}

/** `kind`: the bench audio (audio.mjs): conversational (default), continuous or tone. */
export async function writeLongSpool(repo, path, hours, kind = 'conversational') {
  const { SpoolWriter } = await import(join(repo, 'dist', 'spool', 'writer.js'));
  const { RecordType } = await import(join(repo, 'dist', 'spool', 'format.js'));
  const parties = benchParties(kind);
  const answeredAt = Date.UTC(2026, 0, 1, 8);
  const w = new SpoolWriter(path);
  w.appendMeta(answeredAt, benchSpoolMeta('LONGSPOOL', answeredAt));
  const frames = hours * 3600 * 50;
  for (let n = 0; n < frames; n += 5000) {
    appendBenchFrames(w, RecordType.Rtp, parties, answeredAt, n, Math.min(frames, n + 5000));
    await w.drain();
  }
  await w.close({ endedAt: answeredAt + frames * 20, reason: 'bye' });
}

/** Writes the spool, encodes it in a child, returns what the child measured. */
export async function measureLongSpool(repo, hours, complexity, bitrate) {
  const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-long-'));
  try {
    const spool = join(dir, 'long.spool');
    await writeLongSpool(repo, spool, hours);
    const spoolMb = statSync(spool).size / 2 ** 20;
    const out = execFileSync(process.execPath, [SELF, '--child', repo, spool, join(dir, 'store'), String(complexity), String(bitrate)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    return { hours, spoolMb: Math.round(spoolMb), complexity, bitrate, ...JSON.parse(out) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  const [repo, spool, storageDir, complexity, bitrate] = process.argv.slice(3);
  const { readFileSync } = await import('node:fs');
  const { encodeSpool } = await import(join(repo, 'dist', 'encoder', 'encode-spool.js'));
  let peakRss = 0;
  const sample = () => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  };
  const timer = setInterval(sample, 200);
  const t0 = process.cpuUsage();
  const r = await encodeSpool({ spoolPath: spool, staging: { kind: 'local', dir: join(storageDir, 'recordings', '.staging') }, id: 'LONGSPOOL', complexity: Number(complexity), bitrate: Number(bitrate), skipSilence: true, maskDtmf: false });
  const cpu = process.cpuUsage(t0);
  clearInterval(timer);
  sample();
  const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
  process.stdout.write(JSON.stringify({
    audioHours: Math.round((r.audioMs / 3_600_000) * 100) / 100,
    fileMb: Math.round((r.staged.bytes / 2 ** 20) * 10) / 10,
    framesEncoded: r.framesEncoded, framesSkipped: r.framesSkipped,
    cpuSeconds: Math.round(((cpu.user + cpu.system) / 1e6) * 10) / 10,
    peakRssMb: Math.round((Math.max(peakRss, hwm) / 2 ** 20) * 10) / 10,
  }));
}
