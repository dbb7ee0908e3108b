/**
 * The spool at rest, end to end (encryption on, as shipped): a SIPREC call whose two legs
 * arrive as SRTP is recorded; a copy of its spool taken mid-call (what a disk pulled from the
 * running recorder holds) carries no clear RTP payload and no SDES key, offered or answered,
 * while the same copy opened with the recorder's key ring holds the audio. The daemon is
 * then killed, and the next start recovers the call as `truncated` with both tones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, removeDir, type DaemonHandle } from '../support/daemon.js';
import { SipTestClient, answerMedia } from '../support/sip-client.js';
import { siprecMultipart, siprecSdp, rsMetadata } from '../support/siprec-body.js';
import { RtpSender } from '../support/rtp-sender.js';
import { sleep } from '../support/legs.js';
import { storedEntry } from '../support/index-reader.js';
import { decodeWithFfmpeg, tonePower } from '../support/audio.js';
import { answerCrypto, cryptoLine, newKey, senderPolicy, toSrtpOffer } from '../support/srtp-offer.js';
import { tempDir } from '../support/cleanup.js';
import { Keyring } from '../../src/crypto/keyring.js';
import { FsAudioStore } from '../../src/storage/fs-store.js';
import { exportAudioToFile } from '../../src/storage/audio-export.js';
import { readSpool, spoolKeyOf } from '../../src/spool/reader.js';
import { RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC_SEALED } from '../../src/spool/format.js';
import { SPOOL_TAG_BYTES } from '../../src/spool/cipher.js';
import type { RecordingEntry } from '../../src/types.js';

const TONES = [440, 1000] as const;
/** Clear payload windows compared: 32 octets from the start of each packet's payload. */
const WINDOW = 32;

describe('the spool at rest', () => {
  const daemons: DaemonHandle[] = [];
  const keys = [newKey('AES_CM_128_HMAC_SHA1_80'), newKey('AEAD_AES_256_GCM')];
  const lines = keys.map((k) => cryptoLine(1, k));
  let id = '';
  let copy: Buffer;
  let copyPath = '';
  let answered: string[] = [];
  /** The first packets' clear payloads of each leg, as the senders made them. */
  let clear: Buffer[] = [];
  let entry: RecordingEntry;
  let dir = '';
  let metrics = '';
  let warned: unknown;

  beforeAll(async () => {
    const d = await startDaemon({ set: { encryption: 'enabled = true' } });
    daemons.push(d);
    dir = d.dir;
    const client = new SipTestClient('udp', d.udpPort);
    await client.open();
    const senders: RtpSender[] = [];
    try {
      const offer = toSrtpOffer(siprecSdp({ codecs: '0 101' }), lines.map((l) => [l]));
      const res = await client.invite({ ...siprecMultipart(offer, rsMetadata('+358501112233', '1001')), headers: ['Require: siprec'] });
      expect(res.status).toBe(200);
      id = d.logs.find((l) => l.msg === 'call answered')!.recording as string;
      const sdp = res.body.toString('utf8');
      answered = answerCrypto(sdp).flat().map((a) => /inline:([A-Za-z0-9+/=]+)/.exec(a)![1]!);
      const media = answerMedia(sdp);
      // A sender's payloads depend only on its tone and count: a twin that never sends
      // makes the same ones in the clear.
      for (const [i, hz] of TONES.entries()) {
        senders.push(new RtpSender({ port: media[i]!.port, toneHz: hz, srtp: senderPolicy(lines[i]!) }));
        const twin = new RtpSender({ port: 9, toneHz: hz });
        for (let n = 0; n < 50; n++) clear.push(twin.packet().subarray(12, 12 + WINDOW));
      }
      for (const s of senders) await s.open();
      for (const s of senders) s.start();
      await sleep(2000);
      copyPath = join(tempDir('spool-copy'), `${id}.spool`);
      copyFileSync(join(d.dir, 'data', 'spool', `${id}.spool`), copyPath);
      copy = readFileSync(copyPath);
      await d.kill();
    } finally {
      for (const s of senders) s.close();
      client.close();
    }
    clear = clear.filter((c, i) => clear.findIndex((x) => x.equals(c)) === i);

    // One bit of the 4th sealed block's ciphertext (200 ms of the call), as a failing disk might flip it.
    const spoolPath = join(d.dir, 'data', 'spool', `${id}.spool`);
    const file = readFileSync(spoolPath);
    let at = SPOOL_MAGIC_SEALED.length;
    at += 4 + file.readUInt32LE(at) + SPOOL_TAG_BYTES;
    for (let block = 0; ; at += RECORD_HEADER_BYTES + file.readUInt32LE(at + 4)) if (file[at] === RecordType.Sealed && ++block === 4) break;
    file[at + RECORD_HEADER_BYTES + 30]! ^= 0x04;
    writeFileSync(spoolPath, file);

    const again = await startDaemon({ dir: d.dir, configText: readFileSync(d.configFile, 'utf8') });
    daemons.push(again);
    await again.waitForLog((l) => l.msg === 'recording stored' && l.recording === id, 30_000);
    entry = await storedEntry(join(d.dir, 'data'), id);
    warned = again.logs.find((l) => l.level === 'warn' && l.msg.startsWith('spool records failed authentication'))?.records;
    metrics = await (await fetch(`http://127.0.0.1:${again.httpPort}/metrics`)).text();
  }, 60_000);

  afterAll(async () => {
    for (const d of daemons.splice(0)) await d.kill();
    if (dir) removeDir(dir);
  });

  it('holds no clear RTP payload and no SDES key in a copy taken mid-call', () => {
    expect(copy.subarray(0, SPOOL_MAGIC_SEALED.length)).toEqual(SPOOL_MAGIC_SEALED);
    expect(copy.length).toBeGreaterThan(100 * (16 + 172));
    expect(clear.length).toBeGreaterThan(1);
    for (const c of clear) expect(copy.includes(c)).toBe(false);
    for (const k of keys) {
      expect(copy.includes(k.keySalt.subarray(0, 16))).toBe(false);
      expect(copy.includes(Buffer.from(k.base64.slice(0, 16)))).toBe(false);
    }
    for (const a of answered) {
      expect(copy.includes(Buffer.from(a, 'base64').subarray(0, 16))).toBe(false);
      expect(copy.includes(Buffer.from(a.slice(0, 16)))).toBe(false);
    }
  });

  it('opens with the recorder\'s key ring: the copy holds the decrypted audio, still without an SDES key', async () => {
    const ring = Keyring.open({ master_key_file: join(dir, 'data', 'master.key') }, { create: false });
    const key = await spoolKeyOf(copyPath, id, ring);
    expect(key).toBeDefined();
    const found = new Set<string>();
    const text: string[] = [];
    let rtp = 0;
    const res = await readSpool(copyPath, (r) => {
      if (r.type === RecordType.Rtp) {
        rtp++;
        for (const c of clear) if (r.payload.includes(c)) found.add(c.toString('hex'));
      } else if (r.type !== RecordType.Rtcp) text.push(r.payload.toString('utf8'));
    }, { key });
    expect(res.rejected).toBe(0);
    expect(rtp).toBeGreaterThan(100);
    expect(found.size).toBe(clear.length);
    const json = text.join('\n');
    expect(json).toContain('PCMU');
    for (const k of [...keys.map((x) => x.base64), ...answered]) expect(json.includes(k.slice(0, 16))).toBe(false);
  });

  it('recovers the call cut by SIGKILL as truncated, with both tones, the damaged block left out and counted', async () => {
    expect(warned).toBe(1);
    expect(metrics).toMatch(/^tallenne_spool_records_rejected_total 1$/m);
    expect(entry.status).toBe('truncated');
    expect(entry.durationMs).toBeGreaterThan(1500);
    expect(entry.legs.every((l) => l.packets > 50)).toBe(true);
    // The stored file is encrypted too: read it through the store, as an export does.
    const ring = Keyring.open({ master_key_file: join(dir, 'data', 'master.key') }, { create: false });
    const out = join(tempDir('spool-export'), 'call.opus');
    await exportAudioToFile(new FsAudioStore(join(dir, 'data'), { keys: ring }), entry, 'opus', out);
    const pcm = decodeWithFfmpeg(out);
    for (const [ch, hz] of TONES.entries()) expect(tonePower(pcm.channels[ch]!, 8000, hz, 8000 * 0.3, 8000 * 1.5)).toBeGreaterThan(0.3);
  });
});
