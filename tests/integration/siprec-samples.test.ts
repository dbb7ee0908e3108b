/**
 * Every SIPREC sample from real recording clients (../shared/siprec-samples/) is replayed
 * over UDP to the running daemon: answered 200 with the labels echoed, a tone sent on each
 * answered m-line, and the stored recording checked for its participants, roles and channel
 * order, by decoding the audio (each leg has its own tone). The in-dialog samples (the RFC
 * 7866 hold update, the BroadWorks pause) follow their INVITE in the same dialog. The damaged
 * BroadWorks capture gets a clean 400 with a reason, and the rejection is counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startDaemon, removeDir, type DaemonHandle } from '../support/daemon.js';
import { answerMedia } from '../support/sip-client.js';
import { SampleDialog } from '../support/sample-replay.js';
import { closeAll, sleep, startAll, tonesForAnswer, type TonedLeg } from '../support/legs.js';
import { storedEntries } from '../support/index-reader.js';
import { decodeWithFfmpeg, ffprobe, opusinfo, tonePower } from '../support/audio.js';
import { sampleNames } from '../unit/sip/samples.js';
import { firstHeader } from '../../src/sip/message.js';
import type { Direction, RecordingEntry, Role } from '../../src/types.js';

interface LegExpect { label: string; channel: 0 | 1; role: Role | 'mixed' }
interface PartyExpect { id: string; role: Role; number?: string; masked?: boolean; sends?: string[] }
interface Expectation {
  /** Samples sent in one dialog, INVITE first. */
  readonly samples: readonly string[];
  readonly direction: Direction;
  /** Answered audio m-lines, in offer order. */
  readonly legs: readonly LegExpect[];
  readonly participants: readonly PartyExpect[];
  readonly paused?: 'whole-call' | 'after-update';
  readonly groupId?: string;
  /** The in-dialog sample's metadata, as the daemon logs it when it applies the update. */
  readonly update?: 'partial' | 'none';
}

/**
 * What each sample must produce (with the default rules: only 3-5 digit extensions are the
 * organisation's). Participant ids are prefixes of the metadata's ids; the organisation's
 * extensions are stored in clear, every other number masked.
 */
const EXPECTED: Readonly<Record<string, Expectation>> = {
  acme: {
    samples: ['drachtio-acme-oracle-sbc.body'],
    direction: 'internal',
    legs: [{ label: '16777227', channel: 0, role: 'agent' }, { label: '16777228', channel: 1, role: 'agent' }],
    participants: [
      { id: 'fSD3PFEr', role: 'agent', number: '9000', sends: ['16777227'] },
      { id: 'EbccNyyp', role: 'agent', number: '1002', sends: ['16777228'] },
    ],
  },
  avayaStyle: {
    samples: ['drachtio-avaya-sbce-style.body'],
    direction: 'unknown',
    legs: [{ label: '10', channel: 0, role: 'customer' }, { label: '20', channel: 1, role: 'agent' }],
    participants: [
      { id: '9a2de728', role: 'customer', masked: true, sends: ['10'] },
      // The SBC's dummy party: no number at all.
      { id: 'abcdef12', role: 'agent', number: 'withheld', sends: ['20'] },
    ],
  },
  cube: {
    samples: ['drachtio-cisco-cube.body'],
    direction: 'internal',
    legs: [{ label: '1', channel: 0, role: 'agent' }, { label: '2', channel: 1, role: 'agent' }],
    participants: [
      { id: 'kQNhKFdEEeeJ99D', role: 'agent', number: '7301', sends: ['1'] },
      { id: 'kQNhKFdEEeeJ+ND', role: 'agent', number: '7300', sends: ['2'] },
    ],
  },
  cubeInactive: {
    samples: ['drachtio-cisco-inactive.body'],
    direction: 'unknown',
    legs: [{ label: '1', channel: 0, role: 'customer' }, { label: '2', channel: 1, role: 'agent' }],
    participants: [
      { id: 'GZBIusaXEeuxxa1', role: 'customer', masked: true },
      // No rule makes +972… the organisation's: taken as the callee, but masked.
      { id: 'GZBIusaXEeuxxq1', role: 'agent', masked: true },
    ],
    paused: 'whole-call',
  },
  connectel: {
    samples: ['drachtio-opensips-connectel.body'],
    direction: 'unknown',
    legs: [{ label: '1', channel: 0, role: 'customer' }, { label: '2', channel: 1, role: 'agent' }],
    participants: [
      { id: 'WEWTz80c', role: 'customer', masked: true },
      { id: '21Isz6eF', role: 'agent', masked: true },
    ],
  },
  sems: {
    samples: ['drachtio-procomm-sems.body'],
    direction: 'unknown',
    legs: [{ label: 'a_leg', channel: 0, role: 'customer' }, { label: 'b_leg', channel: 1, role: 'agent' }],
    participants: [
      { id: 'Ye5S5pU+', role: 'customer', masked: true, sends: ['a_leg'] },
      { id: 'QDhKextj', role: 'agent', masked: true, sends: ['b_leg'] },
    ],
  },
  avaya: {
    samples: ['miarec-avaya-sbce-invite.sip'],
    direction: 'unknown',
    legs: [{ label: '10', channel: 0, role: 'customer' }],
    participants: [
      { id: 'b536ff63', role: 'customer', masked: true, sends: ['10'] },
      { id: 'abcdef12', role: 'agent', number: 'withheld', sends: [] },
    ],
  },
  broadworks: {
    samples: ['miarec-broadworks-invite.sip', 'miarec-broadworks-reinvite-pause.sip'],
    direction: 'inbound',
    legs: [{ label: '1', channel: 0, role: 'mixed' }],
    participants: [
      // BroadWorks says termCall: the recorded user is called, the caller is the customer.
      { id: 'urn:uuid:', role: 'agent', masked: true },
      { id: 'urn:uuid:', role: 'customer', masked: true },
    ],
    paused: 'after-update',
    update: 'none',
    groupId: 'urn:uuid:6219893c-d072-43d3-ba6c-8828cf7be472',
  },
  metaswitch: {
    samples: ['miarec-metaswitch-invite.sip'],
    direction: 'outbound',
    legs: [{ label: '1', channel: 0, role: 'mixed' }],
    participants: [
      { id: 'SKPyJOHT', role: 'agent', masked: true },
      { id: 'SKPzbuHT', role: 'customer', masked: true },
    ],
  },
  oracle: {
    samples: ['miarec-oracle-sbc-invite.sip'],
    direction: 'outbound',
    // The one stream is the calling agent's: it goes to the agent's (right) channel.
    legs: [{ label: '16777227', channel: 1, role: 'agent' }],
    participants: [
      { id: 'SQnUa0JN', role: 'agent', number: '2001', sends: ['16777227'] },
      { id: '40lfHmab', role: 'customer', masked: true, sends: [] },
    ],
  },
  rfc7866: {
    samples: ['rfc7866-invite-example.sip', 'rfc7866-reinvite-hold-partial.sip'],
    direction: 'unknown',
    // Two audio and two video m-lines: the video ones are refused (port 0), labels kept.
    legs: [{ label: '96', channel: 0, role: 'customer' }, { label: '98', channel: 1, role: 'agent' }],
    participants: [
      // The partial update puts Bob on hold (no <send>): what he sent before stays his.
      // "sip:bob@…" is no phone number: nothing of it is stored.
      { id: 'srfBElmC', role: 'customer', number: 'withheld', sends: ['97', '96'] },
      { id: 'zSfPoSvd', role: 'agent', number: 'withheld', sends: ['98', '99'] },
    ],
    groupId: '7+OTCyoxTmqmqyA/1weDAg==',
    update: 'partial',
  },
};

const MANGLED = 'drachtio-broadworks-mangled.body';

interface CallRun {
  readonly key: string;
  readonly dialog: SampleDialog;
  readonly legs: TonedLeg[];
  readonly offerLabels: string[];
  readonly answerLabels: Array<string | undefined>;
  readonly answerPorts: number[];
  readonly statuses: number[];
}

async function replay(d: DaemonHandle, key: string, exp: Expectation): Promise<CallRun> {
  const dialog = new SampleDialog(d.udpPort);
  await dialog.open();
  const statuses: number[] = [];
  const first = await dialog.sendSample(exp.samples[0]!);
  statuses.push(first.status);
  if (first.status !== 200) return { key, dialog, legs: [], offerLabels: [], answerLabels: [], answerPorts: [], statuses };
  const sdp = first.body.toString('utf8');
  const media = answerMedia(sdp);
  const legs = await tonesForAnswer(sdp);
  startAll(legs);
  await sleep(1500);
  for (const next of exp.samples.slice(1)) {
    const res = await dialog.sendSample(next);
    statuses.push(res.status);
    await sleep(800);
  }
  for (const l of legs) l.sender.stop();
  statuses.push((await dialog.request('BYE')).status);
  closeAll(legs);
  dialog.close();
  return {
    key, dialog, legs, statuses,
    offerLabels: [],
    answerLabels: media.map((m) => m.label),
    answerPorts: media.map((m) => m.port),
  };
}

describe('replaying the SIPREC samples of real recording clients', () => {
  let d: DaemonHandle;
  const runs = new Map<string, CallRun>();
  let entries: RecordingEntry[] = [];

  beforeAll(async () => {
    d = await startDaemon();
    const all = await Promise.all(Object.entries(EXPECTED).map(([k, e]) => replay(d, k, e)));
    for (const r of all) runs.set(r.key, r);
    const want = all.filter((r) => r.statuses[0] === 200).length;
    await d.waitForLog(() => d.logs.filter((l) => l.msg === 'recording stored' || l.msg.startsWith('finalising')).length >= want, 60_000);
    entries = await storedEntries(join(d.dir, 'data'));
  }, 120_000);

  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('covers every .sip and .body sample', () => {
    const covered = new Set([...Object.values(EXPECTED).flatMap((e) => e.samples), MANGLED]);
    for (const name of [...sampleNames('.sip'), ...sampleNames('.body')]) expect(covered.has(name), name).toBe(true);
  });

  for (const [key, exp] of Object.entries(EXPECTED)) {
    it(`${exp.samples.join(' + ')}: answered, recorded with the right parties, roles and channels`, () => {
      const run = runs.get(key)!;
      expect(run.statuses.every((s) => s === 200), `statuses ${run.statuses.join(',')}`).toBe(true);
      // Every answered audio m-line echoes its label.
      const answered = run.answerPorts.map((p, i) => ({ p, label: run.answerLabels[i] })).filter((x) => x.p !== 0);
      expect(answered.map((a) => a.label)).toEqual(exp.legs.map((l) => l.label));

      const entry = entries.find((e) => e.callId === run.dialog.callId);
      expect(entry, 'index entry').toBeDefined();
      const e = entry!;
      expect(e.status).toBe('complete');
      expect(e.siprec).toBe(true);
      expect(e.direction).toBe(exp.direction);
      if (exp.groupId !== undefined) expect(e.groupId).toBe(exp.groupId);
      if (exp.update !== undefined) {
        const updated = d.logs.filter((l) => l.msg === 'call updated' && l.recording === e.id);
        expect(updated.map((l) => [l.metadata, l.paused])).toEqual([[exp.update, exp.paused === 'after-update']]);
      }

      // Legs: labels, roles (a mixed stream has no single role) in offer order.
      expect(e.legs.map((l) => l.label)).toEqual(exp.legs.map((l) => l.label));
      for (const [i, l] of exp.legs.entries()) {
        expect(e.legs[i]!.role).toBe(l.role === 'mixed' ? 'other' : l.role);
        expect(e.legs[i]!.packets).toBeGreaterThan(l.role === 'mixed' ? 20 : exp.paused === 'whole-call' ? -1 : 20);
      }

      // Participants, by id prefix and in document order.
      expect(e.participants).toHaveLength(exp.participants.length);
      for (const [i, p] of exp.participants.entries()) {
        const got = e.participants[i]!;
        expect(got.id.startsWith(p.id), `${got.id} starts with ${p.id}`).toBe(true);
        expect(got.role).toBe(p.role);
        if (p.number !== undefined) expect(got.number).toBe(p.number);
        if (p.masked) expect(got.number).toMatch(/\*\*\*$/);
        if (p.sends !== undefined) expect(got.sends).toEqual(p.sends);
      }
      if (e.customerNumber !== undefined) expect(e.customerNumber).toMatch(/\*\*\*$|^withheld$/);

      const file = join(d.dir, 'data', e.file);
      expect(opusinfo(file).status).toBe(0);
      const probe = ffprobe(file);
      expect(probe.channels).toBe(2);
      expect(Math.abs(probe.durationSec * 1000 - e.durationMs)).toBeLessThan(60);

      if (exp.paused === 'whole-call') {
        expect(e.pauses).toEqual([{ startMs: 0, endMs: e.durationMs }]);
      } else if (exp.paused === 'after-update') {
        expect(e.pauses).toHaveLength(1);
        expect(e.pauses[0]!.startMs).toBeGreaterThan(1000);
        expect(e.pauses[0]!.endMs).toBe(e.durationMs);
      } else {
        expect(e.pauses).toEqual([]);
      }

      // Channel order: each leg's tone is on the channel its role puts it on, and only there.
      const pcm = decodeWithFfmpeg(file);
      const from = 8000 * 0.3;
      const to = 8000 * 1.3;
      for (const [i, l] of exp.legs.entries()) {
        const tone = run.legs[i]!.toneHz;
        const own = pcm.channels[l.channel]!;
        const other = pcm.channels[1 - l.channel]!;
        if (exp.paused === 'whole-call') {
          expect(tonePower(own, 8000, tone, from, to)).toBeLessThan(0.05);
          continue;
        }
        expect(tonePower(own, 8000, tone, from, to), `leg ${l.label} tone on channel ${l.channel}`).toBeGreaterThan(0.3);
        expect(tonePower(other, 8000, tone, from, to)).toBeLessThan(0.05);
      }
    });
  }

  it('rejects the damaged BroadWorks capture with 400 and a reason, and counts it', async () => {
    const dialog = new SampleDialog(d.udpPort);
    await dialog.open();
    try {
      const res = await dialog.sendSample(MANGLED);
      expect(res.status).toBe(400);
      expect(firstHeader(res.headers, 'warning')).toMatch(/^399 tallenne ".*Content-Type.*"$/);
      const metrics = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
      expect(metrics).toMatch(/tallenne_calls_rejected_total\{reason="malformed"\} [1-9]/);
      expect(entries.some((e) => e.callId === dialog.callId)).toBe(false);
    } finally {
      dialog.close();
    }
  });
});
