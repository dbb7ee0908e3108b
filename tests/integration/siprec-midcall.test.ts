/**
 * SIPREC metadata changed mid-call by an in-dialog request whose whole body is the metadata
 * (RFC 7866 §9.1), the way recording clients send it, on calls opened with the shared
 * samples (../shared/siprec-samples/):
 *   - a Webex/BroadWorks call becoming a four-party conference (UPDATE, BroadWorks root);
 *   - an Avaya SBCE placeholder party replaced by the real one (UPDATE, complete snapshot);
 *   - the RFC 7865 §8.2 partial update (a party leaves);
 *   - the Avaya content again as a re-INVITE without SDP, answered with the current SDP.
 * Each checks the stored participants with their join and leave times, the roles, and that
 * both channels of the file run the whole call with each leg's tone before and after the
 * update. A body type the recorder refuses is answered 415, logged and counted; the call
 * goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startDaemon, removeDir, type DaemonHandle } from '../support/daemon.js';
import { answerMedia } from '../support/sip-client.js';
import { SampleDialog } from '../support/sample-replay.js';
import { closeAll, sleep, startAll, tonesForAnswer, type TonedLeg } from '../support/legs.js';
import { storedEntries } from '../support/index-reader.js';
import { decodeWithFfmpeg, ffprobe, tonePower } from '../support/audio.js';
import { readSample } from '../unit/sip/samples.js';
import { firstHeader, type SipResponse } from '../../src/sip/message.js';
import type { RecordingEntry } from '../../src/types.js';

const RULES = `
[[agents]]
id = "aino"
name = "Aino Agentti"
extensions = ["8638254725", "1001"]
team = "helpdesk"
[[agents]]
id = "ben"
name = "Ben Esimies"
extensions = ["8638254726"]
team = "helpdesk"
`;

const BW_SESSION = 'urn:uuid:139ff134-7094-4ea9-a4a4-73f0c45e6a23';
const BW_MIXED = 'urn:uuid:dc51a81b-aebc-4a09-8f8b-75c13ec5a4fb';

/** BroadWorks' snapshot once the recorded user has brought a supervisor and a second caller in. */
const BROADWORKS_CONFERENCE = `<?xml version="1.0" encoding="UTF-8"?>
<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec">
<dataMode>complete</dataMode>
<session id="${BW_SESSION}" group="urn:uuid:6219893c-d072-43d3-ba6c-8828cf7be472"></session>
<participant id="urn:uuid:c703d8c4-ac5b-4000-a8ad-a3342ff26072" session="${BW_SESSION}">
<aor>sip:8638254725</aor>
<send><id>${BW_MIXED}</id></send>
</participant>
<participant id="urn:uuid:c649af2e-0c0f-4015-8230-2734d538fc22" session="${BW_SESSION}">
<aor>sip:+19015783200@broadcore.com;user=phone</aor>
<send><id>urn:uuid:9b6ad4c2-9901-4387-8659-a366bfb7dc19</id></send>
</participant>
<participant id="urn:uuid:5e1f0b7a-9d1c-4f53-9a43-0d7f5c1b2a10" session="${BW_SESSION}">
<aor>sip:8638254726</aor>
</participant>
<participant id="urn:uuid:7a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d" session="${BW_SESSION}">
<aor>sip:+358409876543@broadcore.com;user=phone</aor>
</participant>
<stream id="${BW_MIXED}" session="${BW_SESSION}">
<label>1</label>
<mode>mixed</mode>
</stream>
</recording_metadata>
`.replace(/\n/g, '\r\n');

const AVAYA_SESSION = '00FA0800705D4C5DCAAC41';

/** Avaya SBCE's complete snapshot once the far end is known: its placeholder party is gone. */
const AVAYA_REAL_PARTY = `<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
<dataMode>complete</dataMode>
<session session_id="${AVAYA_SESSION}"></session>
<participant participant_id="9a2de728ba0bc348db1e">
<nameID aor="sip:9878942259@212.188.68.145"></nameID>
</participant>
<participantstreamassoc participant_id="9a2de728ba0bc348db1e">
<send>e6988909e02ca808ec0a</send>
</participantstreamassoc>
<participant participant_id="f00dcafe0123456789ab">
<nameID aor="sip:1001@asbce.example"></nameID>
</participant>
<participantsessionassoc participant_id="f00dcafe0123456789ab" session_id="${AVAYA_SESSION}">
<associate-time>2019-11-12T15:57:41</associate-time>
</participantsessionassoc>
<participantstreamassoc participant_id="f00dcafe0123456789ab">
<send>261ddd3615629f108092</send>
</participantstreamassoc>
<stream stream_id="e6988909e02ca808ec0a" session_id="${AVAYA_SESSION}">
<label>10</label>
</stream>
<stream stream_id="261ddd3615629f108092" session_id="${AVAYA_SESSION}">
<label>20</label>
</stream>
</recording>
`.replace(/\n/g, '\r\n');

interface MidCall {
  readonly name: string;
  readonly invite: string;
  readonly method: 'UPDATE' | 'INVITE';
  readonly contentType: string;
  readonly metadata: string;
  /** Refused in-dialog request sent after the update (the call must go on). */
  readonly refused?: { contentType: string; body: string };
}

const CALLS: readonly MidCall[] = [
  { name: 'broadworks', invite: 'miarec-broadworks-invite.sip', method: 'UPDATE', contentType: 'application/rs-metadata+xml', metadata: BROADWORKS_CONFERENCE },
  { name: 'avaya', invite: 'drachtio-avaya-sbce-style.body', method: 'UPDATE', contentType: 'application/rs-metadata', metadata: AVAYA_REAL_PARTY },
  {
    name: 'partial', invite: 'rfc7866-invite-example.sip', method: 'UPDATE', contentType: 'application/rs-metadata+xml',
    metadata: readSample('rfc7865-8.2-partial.xml').toString('utf8'),
    refused: { contentType: 'text/plain', body: 'please call 0401234567' },
  },
  { name: 'reinvite', invite: 'drachtio-avaya-sbce-style.body', method: 'INVITE', contentType: 'application/rs-metadata+xml', metadata: AVAYA_REAL_PARTY },
];

interface Run {
  readonly call: MidCall;
  readonly dialog: SampleDialog;
  readonly legs: TonedLeg[];
  readonly answer: SipResponse;
  readonly update: SipResponse;
  readonly refused?: SipResponse;
  /** ms after the answer when the update was answered. */
  readonly updatedMs: number;
}

async function run(d: DaemonHandle, call: MidCall): Promise<Run> {
  const dialog = new SampleDialog(d.udpPort);
  await dialog.open();
  const answer = await dialog.sendSample(call.invite);
  const t0 = Date.now();
  expect(answer.status, call.name).toBe(200);
  const legs = await tonesForAnswer(answer.body.toString('utf8'));
  startAll(legs);
  await sleep(1500);
  const update = await dialog.request(call.method, { body: call.metadata, contentType: call.contentType, headers: ['Content-Disposition: recording-session'] });
  const updatedMs = Date.now() - t0;
  const refused = call.refused ? await dialog.request('UPDATE', call.refused) : undefined;
  await sleep(1500);
  for (const l of legs) l.sender.stop();
  expect((await dialog.request('BYE')).status).toBe(200);
  closeAll(legs);
  dialog.close();
  return { call, dialog, legs, answer, update, updatedMs, ...(refused ? { refused } : {}) };
}

describe('SIPREC metadata updates without SDP', () => {
  let d: DaemonHandle;
  const runs = new Map<string, Run>();
  const entries = new Map<string, RecordingEntry>();

  beforeAll(async () => {
    d = await startDaemon({ extraToml: RULES });
    for (const r of await Promise.all(CALLS.map((c) => run(d, c)))) runs.set(r.call.name, r);
    await d.waitForLog(() => d.logs.filter((l) => l.msg === 'recording stored').length >= CALLS.length, 60_000);
    const all = await storedEntries(join(d.dir, 'data'));
    for (const r of runs.values()) entries.set(r.call.name, all.find((e) => e.callId === r.dialog.callId)!);
  }, 120_000);

  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  /** The file runs the whole call on both channels; each leg's tone is on its channel before and after the update. */
  function expectWholeCall(r: Run, e: RecordingEntry, channels: readonly (0 | 1)[]): void {
    expect(e.status).toBe('complete');
    const file = join(d.dir, 'data', e.file);
    const probe = ffprobe(file);
    expect(probe.channels).toBe(2);
    expect(Math.abs(probe.durationSec * 1000 - e.durationMs)).toBeLessThan(60);
    const pcm = decodeWithFfmpeg(file);
    expect(pcm.channels.every((c) => Math.abs(c.length / 8000 - e.durationMs / 1000) < 0.06)).toBe(true);
    const at = (ms: number): number => Math.round((ms / 1000) * 8000);
    for (const [i, ch] of channels.entries()) {
      const tone = r.legs[i]!.toneHz;
      expect(tonePower(pcm.channels[ch]!, 8000, tone, at(300), at(1300)), `${r.call.name} leg ${i} before`).toBeGreaterThan(0.3);
      expect(tonePower(pcm.channels[ch]!, 8000, tone, at(r.updatedMs + 300), at(r.updatedMs + 1300)), `${r.call.name} leg ${i} after`).toBeGreaterThan(0.3);
      expect(tonePower(pcm.channels[1 - ch]!, 8000, tone, at(300), at(r.updatedMs + 1300))).toBeLessThan(0.05);
    }
  }

  const near = (got: number | undefined, want: number): void => {
    expect(got).toBeDefined();
    expect(Math.abs(got! - want)).toBeLessThan(300);
  };

  it('a BroadWorks metadata-only UPDATE turns a two-party call into a four-party conference', () => {
    const r = runs.get('broadworks')!;
    expect(r.update.status).toBe(200);
    expect(r.update.body.length).toBe(0);
    const e = entries.get('broadworks')!;
    expect(e.participants.map((p) => [p.id.slice(9, 17), p.role, p.agentId])).toEqual([
      ['c703d8c4', 'agent', 'aino'],
      ['c649af2e', 'customer', undefined],
      ['5e1f0b7a', 'agent', 'ben'],
      ['7a2b3c4d', 'other', undefined],
    ]);
    const [aino, customer, ben, guest] = e.participants;
    expect([aino!.joinedMs, customer!.joinedMs]).toEqual([0, 0]);
    near(ben!.joinedMs, r.updatedMs);
    near(guest!.joinedMs, r.updatedMs);
    expect(e.participants.every((p) => p.leftMs === undefined)).toBe(true);
    expect(customer!.number).toBe('+19015783***');
    expect(guest!.number).toBe('+358409876***');
    expect([e.direction, e.agentId, e.customerNumber, e.groupId]).toEqual(['inbound', 'aino', '+19015783***', 'urn:uuid:6219893c-d072-43d3-ba6c-8828cf7be472']);
    // The one mixed stream keeps its channel.
    expect(e.legs.map((l) => [l.label, l.role])).toEqual([['1', 'other']]);
    const updated = d.logs.find((l) => l.msg === 'call updated' && l.recording === e.id)!;
    expect([updated.metadata, updated.offer, updated.participants]).toEqual(['complete', false, 4]);
    expectWholeCall(r, e, [0]);
  });

  it('an Avaya SBCE complete snapshot replaces the placeholder party with the real one', () => {
    const r = runs.get('avaya')!;
    expect(r.update.status).toBe(200);
    const e = entries.get('avaya')!;
    expect(e.participants.map((p) => [p.id.slice(0, 8), p.role, p.number, p.sends])).toEqual([
      ['9a2de728', 'customer', e.participants[0]!.number, ['10']],
      ['abcdef12', 'agent', 'withheld', ['20']],
      ['f00dcafe', 'agent', '1001', ['20']],
    ]);
    const [customer, placeholder, real] = e.participants;
    expect(customer!.number).toMatch(/\*\*\*$/);
    expect([customer!.joinedMs, customer!.leftMs, placeholder!.joinedMs]).toEqual([0, undefined, 0]);
    near(placeholder!.leftMs, r.updatedMs);
    near(real!.joinedMs, r.updatedMs);
    expect(real!.leftMs).toBeUndefined();
    expect([e.agentId, e.agentName, e.team]).toEqual(['aino', 'Aino Agentti', 'helpdesk']);
    // Channels of the legs already recording do not move.
    expect(e.legs.map((l) => [l.label, l.role])).toEqual([['10', 'customer'], ['20', 'agent']]);
    expectWholeCall(r, e, [0, 1]);
  });

  it('the RFC 7865 partial update marks the party who left and keeps the roles', () => {
    const r = runs.get('partial')!;
    expect(r.update.status).toBe(200);
    const e = entries.get('partial')!;
    expect(e.participants.map((p) => [p.id.slice(0, 8), p.role])).toEqual([['srfBElmC', 'customer'], ['zSfPoSvd', 'agent']]);
    const [bob, alice] = e.participants;
    near(bob!.leftMs, r.updatedMs);
    expect([bob!.joinedMs, alice!.joinedMs, alice!.leftMs]).toEqual([0, 0, undefined]);
    expect(e.legs.map((l) => [l.label, l.role])).toEqual([['96', 'customer'], ['98', 'agent']]);
    expect(d.logs.find((l) => l.msg === 'call updated' && l.recording === e.id)!.metadata).toBe('partial');
    expectWholeCall(r, e, [0, 1]);
  });

  it('the same content as a re-INVITE without SDP is answered with the current SDP', () => {
    const r = runs.get('reinvite')!;
    expect(r.update.status).toBe(200);
    expect(firstHeader(r.update.headers, 'content-type')).toBe('application/sdp');
    const before = answerMedia(r.answer.body.toString('utf8'));
    const after = answerMedia(r.update.body.toString('utf8'));
    expect(after.map((m) => [m.port, m.label, m.direction])).toEqual(before.map((m) => [m.port, m.label, m.direction]));
    const e = entries.get('reinvite')!;
    expect(e.participants.map((p) => [p.id.slice(0, 8), p.role, p.leftMs === undefined])).toEqual([
      ['9a2de728', 'customer', true], ['abcdef12', 'agent', false], ['f00dcafe', 'agent', true],
    ]);
    near(e.participants[2]!.joinedMs, r.updatedMs);
    expect(e.agentId).toBe('aino');
    expectWholeCall(r, e, [0, 1]);
  });

  it('a body type it refuses mid-call gets 415, is logged without digits and counted; the call goes on', async () => {
    const r = runs.get('partial')!;
    expect(r.refused!.status).toBe(415);
    expect(firstHeader(r.refused!.headers, 'warning')).toMatch(/unsupported body type text\/plain/);
    const log = d.logs.find((l) => l.msg === 'in-dialog request refused')!;
    expect([log.status, log.code, log.why, log.method]).toEqual([415, 'TALLENNE_UNSUPPORTED_MEDIA_TYPE', 'unsupported_media_type', 'UPDATE']);
    expect(JSON.stringify(d.logs)).not.toContain('0401234567');
    const metrics = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^tallenne_call_updates_rejected_total\{reason="unsupported_media_type"\} 1$/m);
    expect(entries.get('partial')!.endReason).toBe('bye');
  });
});
