/**
 * Spool files (src/spool/format.ts) built as the daemon writes them: the magic, a META
 * snapshot, RTP and RTCP records of two legs, pause/resume EVENTs and an END. Then torn
 * (cut anywhere, as a crash leaves them) or corrupted: record types, legs, lengths and
 * times changed, JSON payloads broken or of the wrong shape, records repeated or swapped,
 * the magic damaged, bytes flipped.
 */
import type { Rng } from '../rng.js';
import { RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC, writeRecordHeader } from '../../../src/spool/format.js';
import { mutateBytes } from '../mutate.js';
import { rtcpCompound, rtpPacket } from './rtp.js';

function record(type: RecordType, leg: number, time: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(RECORD_HEADER_BYTES + payload.length);
  writeRecordHeader(b, 0, type, leg, payload.length, time);
  payload.copy(b, RECORD_HEADER_BYTES);
  return b;
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v), 'utf8');

function meta(answeredAt: number): unknown {
  const leg = (index: number, channel: number) => ({
    index, label: String(index + 1), role: channel === 0 ? 'customer' : 'agent', channel,
    formats: [{ pt: 0, codec: 'PCMU', clockRate: 8000, channels: 1 }, { pt: 101, codec: 'TELEPHONE-EVENT', clockRate: 8000, channels: 1 }],
  });
  return { id: '01JFUZZ', callId: 'fuzz@127.0.0.1', siprec: true, answeredAt, direction: 'inbound', participants: [], legs: [leg(0, 0), leg(1, 1)] };
}

/** JSON that parses but is not what the reader expects. */
const ODD_JSON = [
  '{"answeredAt":1,"legs":[null]}', '{"answeredAt":1,"legs":[{"index":0,"formats":null}]}', '{"answeredAt":1,"legs":[{"index":0,"formats":[null]}]}',
  '{"answeredAt":1,"legs":[{"index":0,"formats":{}}]}', '{"answeredAt":1,"legs":[{"index":0,"formats":"PCMU"}]}', '{"answeredAt":"1","legs":[]}', '{"answeredAt":1,"legs":{}}',
  '{"answeredAt":1e400,"legs":[]}', 'null', '[]', '0', '"x"', '{"kind":"pause"}', '{"kind":null}', '{"endedAt":"x","reason":1}', '{"endedAt":null}', '{',
  '{"answeredAt":1,"legs":[{"index":"0","formats":[{"pt":"0","codec":"PCMU","clockRate":"8000"}]}]}', '{"answeredAt":1,"legs":[{"formats":[{"codec":"OPUS","clockRate":-1}]}]}',
];

export function spoolFile(rng: Rng, payloadTypes: readonly number[]): Buffer {
  const t0 = 1_700_000_000_000 + rng.int(1_000_000);
  const records: Buffer[] = [record(RecordType.Meta, 0, t0, json(meta(t0)))];
  let t = t0;
  for (let i = rng.range(0, 12); i > 0; i--) {
    t += rng.int(40);
    const leg = rng.int(2);
    switch (rng.int(6)) {
      case 0: records.push(record(RecordType.Rtcp, leg, t, rtcpCompound(rng))); break;
      case 1: records.push(record(RecordType.Event, leg, t, json({ kind: rng.pick(['pause', 'resume']) }))); break;
      case 2: records.push(record(RecordType.Meta, 0, t, json(meta(t0)))); break;
      default: records.push(record(RecordType.Rtp, leg, t, rtpPacket(rng, payloadTypes.length > 0 ? payloadTypes : [0])));
    }
  }
  if (rng.chance(0.7)) records.push(record(RecordType.End, 0, t + 1, json({ endedAt: t + 1, reason: 'bye' })));
  return corrupt(rng, records);
}

function corrupt(rng: Rng, records: Buffer[]): Buffer {
  for (let r = rng.range(1, 3); r > 0 && records.length > 0; r--) {
    const i = rng.int(records.length);
    const rec = Buffer.from(records[i]!);
    if (rec.length < RECORD_HEADER_BYTES) continue; // already cut short by an earlier round
    switch (rng.int(9)) {
      case 0: rec[0] = rng.pick([0, 6, 255, RecordType.Meta, RecordType.Rtp]); break;
      case 1: rec[1] = rng.int(256); break;
      case 2: rec.writeUInt32LE(rng.pick([0, 1, rec.length, 1 << 20, (1 << 20) + 1, 0xffffffff, rec.length - RECORD_HEADER_BYTES + rng.range(-3, 3) >>> 0]), 4); break;
      case 3: rec.writeDoubleLE(rng.pick([NaN, Infinity, -Infinity, -1, 0, 1e300, -0, Number.MAX_SAFE_INTEGER]), 8); break;
      case 4: { // a JSON payload of the wrong shape, under a META, EVENT or END header
        const body = Buffer.from(rng.pick(ODD_JSON), 'utf8');
        records[i] = record(rng.pick([RecordType.Meta, RecordType.Event, RecordType.End]), 0, rec.readDoubleLE(8), body);
        continue;
      }
      case 5: records.splice(i, 0, rec); break;
      case 6: { const j = rng.int(records.length); records[i] = records[j]!; records[j] = rec; continue; }
      case 7: records[i] = mutateBytes(rng, rec); continue;
      default: records.splice(i, 1); continue;
    }
    records[i] = rec;
  }
  let file = Buffer.concat([SPOOL_MAGIC, ...records]);
  if (rng.chance(0.3)) file = file.subarray(0, rng.int(file.length + 1)); // torn: a crash mid-write
  if (rng.chance(0.05)) file = Buffer.concat([mutateBytes(rng, file.subarray(0, SPOOL_MAGIC.length), 1), file.subarray(SPOOL_MAGIC.length)]);
  return file;
}
