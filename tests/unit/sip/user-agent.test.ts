/**
 * The user agent driven through a fake transport and a fake clock: no sockets and no
 * waiting. Covers the INVITE server transaction (timers G/H/I), 2xx repetition until the
 * ACK, CANCEL races, BYE from both sides (timers E/F), the responses' fields, and how a
 * SIPREC client is recognised.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import {
  SipUserAgent, type CallAnswer, type DialogEndReason, type IncomingRequest, type SipCallHandler,
} from '../../../src/sip/user-agent.js';
import { firstHeader, type SipResponse } from '../../../src/sip/message.js';
import { T1, T2, T4, TIMER_64T1 } from '../../../src/sip/retransmit.js';
import type { Flow } from '../../../src/sip/transport.js';
import { FakeClock, FakeTransport, settle } from './fakes.js';
import { collides, type InDialogRequest } from '../../../src/sip/dialog.js';

const SDP = 'v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER_SDP = 'v=0\r\no=- 2 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';

class FakeHandler implements SipCallHandler {
  invites: IncomingRequest[] = [];
  updates: IncomingRequest[] = [];
  endedCalls: Array<[string, DialogEndReason]> = [];
  confirmedCalls: string[] = [];
  inviteAnswer: CallAnswer = { status: 200, sdp: ANSWER_SDP };
  updateAnswer: CallAnswer = { status: 200, sdp: ANSWER_SDP };
  /** When set, invite() waits until release() is called. */
  hold = false;
  private held: Array<() => void> = [];

  async invite(req: IncomingRequest): Promise<CallAnswer> {
    this.invites.push(req);
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    return this.inviteAnswer;
  }
  /** When set, update() waits until release() is called. */
  holdUpdates = false;
  /** What availability() says (null: new calls are taken). */
  busy: CallAnswer | null = null;

  availability(): CallAnswer | null {
    return this.busy;
  }

  async update(req: IncomingRequest): Promise<CallAnswer> {
    this.updates.push(req);
    if (this.holdUpdates) await new Promise<void>((r) => this.held.push(r));
    return this.updateAnswer;
  }
  confirmed(id: string): void {
    this.confirmedCalls.push(id);
  }
  ended(id: string, reason: DialogEndReason): void {
    this.endedCalls.push([id, reason]);
  }
  release(): void {
    for (const r of this.held.splice(0)) r();
  }
}

let seq = 0;

/** A SIP client on the other side of the fake transport. */
class Peer {
  readonly callId = `peer-call-${++seq}`;
  readonly fromTag = `ft${seq}`;
  toTag = '';
  cseq = 1;
  inviteBranch = '';

  constructor(private readonly transport: FakeTransport, readonly flow: Flow) {}

  /** Writes a request; returns its text so that it can be retransmitted. */
  request(method: string, opts: {
    branch?: string; cseq?: number; cseqMethod?: string; headers?: string[]; contact?: string;
    body?: string; contentType?: string; toTag?: string;
  } = {}): string {
    const branch = opts.branch ?? `z9hG4bK${method.toLowerCase()}${++seq}`;
    const toTag = opts.toTag ?? this.toTag;
    const body = opts.body ?? '';
    const lines = [
      `${method} sip:rec@192.0.2.10:5060 SIP/2.0`,
      `Via: SIP/2.0/${this.flow.transport} 192.0.2.20:${this.flow.remote.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:src@192.0.2.20>;tag=${this.fromTag}`,
      `To: <sip:rec@192.0.2.10>${toTag ? `;tag=${toTag}` : ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${opts.cseq ?? this.cseq} ${opts.cseqMethod ?? method}`,
      `Contact: ${opts.contact ?? `<sip:src@192.0.2.20:${this.flow.remote.port}>`}`,
      ...(opts.headers ?? []),
      ...(body ? [`Content-Type: ${opts.contentType ?? 'application/sdp'}`] : []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '', '',
    ];
    const text = lines.join('\r\n') + body;
    this.transport.deliver(text, this.flow);
    return text;
  }

  /** An initial INVITE with an SDP offer. */
  invite(opts: { headers?: string[]; contact?: string; branch?: string } = {}): string {
    this.inviteBranch = opts.branch ?? `z9hG4bKinv${++seq}`;
    return this.request('INVITE', { ...opts, branch: this.inviteBranch, body: SDP, toTag: '' });
  }

  /** The final response to our INVITE, remembering its To tag. */
  finalToInvite(cseq = 1): SipResponse | undefined {
    const res = this.transport.responses(`${cseq} INVITE`).find((r) => r.status >= 200 && firstHeader(r.headers, 'call-id') === this.callId);
    const tag = res && /;tag=([^;\s]+)/.exec(firstHeader(res.headers, 'to') ?? '')?.[1];
    if (tag) this.toTag = tag;
    return res;
  }

  /** ACK for a 2xx (new branch) or, with the INVITE's branch, for a failure. */
  ack(cseq = 1, branch?: string): void {
    this.request('ACK', { cseq, ...(branch ? { branch } : {}) });
  }

  cancel(): void {
    this.request('CANCEL', { branch: this.inviteBranch, cseq: 1, toTag: '' });
  }
}

let clock: FakeClock;
let transport: FakeTransport;
let handler: FakeHandler;
let ua: SipUserAgent;

beforeEach(async () => {
  clock = new FakeClock();
  transport = new FakeTransport();
  handler = new FakeHandler();
  ua = new SipUserAgent(transport, clock, handler, { maxMessageBytes: 65_535, userAgent: 'tallenne-test', log: pino({ level: 'silent' }) });
  await ua.start();
});

/** A peer whose INVITE was answered 200 (and ACKed unless told not to). */
async function establish(opts: { transport?: Flow['transport']; ack?: boolean; headers?: string[]; contact?: string } = {}): Promise<Peer> {
  const peer = new Peer(transport, transport.flow(opts.transport ?? 'UDP'));
  peer.invite({ ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.contact ? { contact: opts.contact } : {}) });
  await settle();
  expect(peer.finalToInvite()?.status).toBe(200);
  if (opts.ack !== false) peer.ack();
  return peer;
}

const count = (cseq: string, status: number) => transport.responses(cseq).filter((r) => r.status === status).length;

describe('INVITE server transaction', () => {
  it('answers 100 then 200 with Contact and SDP, and the ACK confirms the dialog', async () => {
    const peer = await establish({ ack: false });
    const [trying, ok] = transport.responses('1 INVITE');
    expect(trying!.status).toBe(100);
    expect(ok!.status).toBe(200);
    expect(firstHeader(ok!.headers, 'contact')).toBe('<sip:tallenne@192.0.2.10:5060>');
    expect(firstHeader(ok!.headers, 'content-type')).toBe('application/sdp');
    expect(ok!.body.toString()).toBe(ANSWER_SDP);
    expect(firstHeader(ok!.headers, 'allow')).toContain('UPDATE');
    expect(handler.invites).toHaveLength(1);
    expect(ua.dialogCount).toBe(1);
    peer.ack();
    expect(handler.confirmedCalls).toEqual([handler.invites[0]!.dialogId]);
  });

  it('repeats the 2xx at T1, 2T1, … capped at T2 until the ACK, then stops', async () => {
    const peer = await establish({ ack: false });
    expect(count('1 INVITE', 200)).toBe(1);
    clock.advance(T1 - 1);
    expect(count('1 INVITE', 200)).toBe(1);
    clock.advance(1);
    expect(count('1 INVITE', 200)).toBe(2);
    clock.advance(2 * T1);
    expect(count('1 INVITE', 200)).toBe(3);
    clock.advance(4 * T1);
    expect(count('1 INVITE', 200)).toBe(4);
    clock.advance(T2);
    expect(count('1 INVITE', 200)).toBe(5);
    clock.advance(T2);
    expect(count('1 INVITE', 200)).toBe(6);
    peer.ack();
    clock.advance(TIMER_64T1);
    expect(count('1 INVITE', 200)).toBe(6);
    expect(handler.endedCalls).toEqual([]);
    expect(ua.dialogCount).toBe(1);
  });

  it('ends the call with a BYE when the 2xx is never acknowledged (64·T1)', async () => {
    await establish({ ack: false });
    clock.advance(TIMER_64T1 - 1);
    expect(handler.endedCalls).toEqual([]);
    clock.advance(1);
    expect(handler.endedCalls).toEqual([[handler.invites[0]!.dialogId, 'no-ack']]);
    expect(transport.requests('BYE')).toHaveLength(1);
    expect(ua.dialogCount).toBe(0);
    const repeats = count('1 INVITE', 200);
    clock.advance(TIMER_64T1);
    expect(count('1 INVITE', 200)).toBe(repeats);
  });

  it('does not repeat the 2xx over TCP, but still ends the call without an ACK', async () => {
    await establish({ transport: 'TCP', ack: false });
    clock.advance(TIMER_64T1 - 1);
    expect(count('1 INVITE', 200)).toBe(1);
    expect(handler.endedCalls).toEqual([]);
    clock.advance(1);
    expect(handler.endedCalls.map((e) => e[1])).toEqual(['no-ack']);
  });

  it('absorbs a retransmitted INVITE: the 100 again while pending, nothing once the 2xx is sent', async () => {
    handler.hold = true;
    const peer = new Peer(transport, transport.flow());
    const text = peer.invite();
    await settle();
    transport.deliver(text, peer.flow);
    expect(count('1 INVITE', 100)).toBe(2);
    expect(handler.invites).toHaveLength(1);
    handler.release();
    await settle();
    expect(count('1 INVITE', 200)).toBe(1);
    const sentBefore = transport.sent.length;
    transport.deliver(text, peer.flow);
    await settle();
    expect(transport.sent.length).toBe(sentBefore);
    expect(handler.invites).toHaveLength(1);
    expect(ua.dialogCount).toBe(1);
  });

  it('repeats a failure over UDP (timer G) and forgets the transaction after 64·T1 (timer H)', async () => {
    handler.inviteAnswer = { status: 486 };
    const peer = new Peer(transport, transport.flow());
    const text = peer.invite();
    await settle();
    expect(count('1 INVITE', 486)).toBe(1);
    for (const [step, total] of [[T1, 2], [2 * T1, 3], [4 * T1, 4], [T2, 5], [T2, 6]] as const) {
      clock.advance(step);
      expect(count('1 INVITE', 486)).toBe(total);
    }
    // 64·T1 after the first send: no more repeats, and the transaction is gone.
    clock.advance(TIMER_64T1 - (T1 + 2 * T1 + 4 * T1 + 2 * T2));
    const sent = count('1 INVITE', 486);
    clock.advance(10 * T2);
    expect(count('1 INVITE', 486)).toBe(sent);
    transport.deliver(text, peer.flow);
    await settle();
    expect(handler.invites).toHaveLength(2);
  });

  it('stops repeating a failure on its ACK and absorbs retransmitted ACKs for T4 (timer I)', async () => {
    handler.inviteAnswer = { status: 488, warning: 'no codec' };
    const peer = new Peer(transport, transport.flow());
    const text = peer.invite();
    await settle();
    const failure = peer.finalToInvite()!;
    expect(failure.status).toBe(488);
    expect(firstHeader(failure.headers, 'accept')).toContain('application/sdp');
    peer.ack(1, peer.inviteBranch);
    clock.advance(T1 * 4);
    expect(count('1 INVITE', 488)).toBe(1);
    const sentBefore = transport.sent.length;
    peer.ack(1, peer.inviteBranch);
    transport.deliver(text, peer.flow);
    await settle();
    expect(transport.sent.length).toBe(sentBefore);
    expect(handler.invites).toHaveLength(1);
    expect(handler.confirmedCalls).toEqual([]);
    clock.advance(T4);
    transport.deliver(text, peer.flow);
    await settle();
    expect(handler.invites).toHaveLength(2);
  });

  it('does not repeat a failure over TCP', async () => {
    handler.inviteAnswer = { status: 503, retryAfterSeconds: 5, warning: 'at capacity' };
    const peer = new Peer(transport, transport.flow('TCP'));
    peer.invite();
    await settle();
    const res = peer.finalToInvite()!;
    expect(res.status).toBe(503);
    expect(firstHeader(res.headers, 'retry-after')).toBe('5');
    expect(firstHeader(res.headers, 'warning')).toBe('399 tallenne "at capacity"');
    clock.advance(TIMER_64T1);
    expect(count('1 INVITE', 503)).toBe(1);
  });
});

describe('CANCEL', () => {
  it('before the final answer: 200 to the CANCEL, 487 to the INVITE, and the late 2xx is undone', async () => {
    handler.hold = true;
    const peer = new Peer(transport, transport.flow());
    peer.invite();
    await settle();
    peer.cancel();
    const cancelOk = transport.responses('1 CANCEL');
    expect(cancelOk.map((r) => r.status)).toEqual([200]);
    const final = peer.finalToInvite()!;
    expect(final.status).toBe(487);
    const tag = (r: SipResponse) => /;tag=([^;\s]+)/.exec(firstHeader(r.headers, 'to')!)?.[1];
    expect(tag(cancelOk[0]!)).toBe(tag(final));
    handler.release();
    await settle();
    expect(count('1 INVITE', 200)).toBe(0);
    expect(handler.endedCalls).toEqual([[handler.invites[0]!.dialogId, 'cancel']]);
    expect(ua.dialogCount).toBe(0);
    peer.ack(1, peer.inviteBranch);
    clock.advance(TIMER_64T1);
    expect(count('1 INVITE', 487)).toBe(1);
  });

  it('after the 2xx: 200 to the CANCEL and the call goes on', async () => {
    const peer = await establish({ ack: false });
    peer.cancel();
    expect(transport.responses('1 CANCEL').map((r) => r.status)).toEqual([200]);
    expect(count('1 INVITE', 487)).toBe(0);
    peer.ack();
    expect(handler.confirmedCalls).toHaveLength(1);
    expect(handler.endedCalls).toEqual([]);
    expect(ua.dialogCount).toBe(1);
  });

  it('for an unknown transaction: 481', () => {
    const peer = new Peer(transport, transport.flow());
    peer.request('CANCEL', { branch: 'z9hG4bKnosuch', toTag: '' });
    expect(transport.responses('1 CANCEL').map((r) => r.status)).toEqual([481]);
  });
});

describe('BYE', () => {
  it('from the peer: 200, the handler hears "bye", and a second BYE gets 481', async () => {
    const peer = await establish();
    peer.cseq = 2;
    peer.request('BYE');
    expect(transport.responses('2 BYE').map((r) => r.status)).toEqual([200]);
    expect(handler.endedCalls).toEqual([[handler.invites[0]!.dialogId, 'bye']]);
    expect(ua.dialogCount).toBe(0);
    peer.cseq = 3;
    peer.request('BYE');
    expect(transport.responses('3 BYE').map((r) => r.status)).toEqual([481]);
  });

  it('answers a retransmitted BYE with the same 200 and ends the call once', async () => {
    const peer = await establish();
    peer.cseq = 2;
    const text = peer.request('BYE');
    transport.deliver(text, peer.flow);
    expect(transport.responses('2 BYE').map((r) => r.status)).toEqual([200, 200]);
    expect(handler.endedCalls).toHaveLength(1);
  });

  it('ours (hang-up): sent to the peer\'s Contact in the dialog, repeated until its 200', async () => {
    const peer = await establish({ headers: ['Record-Route: <sip:proxy.example;lr>'] });
    ua.hangUp(handler.invites[0]!.dialogId);
    expect(handler.endedCalls).toEqual([[handler.invites[0]!.dialogId, 'local']]);
    const [bye] = transport.requests('BYE');
    expect(bye!.uri).toBe('sip:src@192.0.2.20:5070');
    expect(firstHeader(bye!.headers, 'call-id')).toBe(peer.callId);
    expect(firstHeader(bye!.headers, 'from')).toContain(`tag=${peer.toTag}`);
    expect(firstHeader(bye!.headers, 'to')).toContain(`tag=${peer.fromTag}`);
    expect(firstHeader(bye!.headers, 'route')).toBe('<sip:proxy.example;lr>');
    clock.advance(T1);
    clock.advance(2 * T1);
    expect(transport.requests('BYE')).toHaveLength(3);
    // The peer answers: no more repeats.
    const via = firstHeader(bye!.headers, 'via')!;
    transport.deliver(`SIP/2.0 200 OK\r\nVia: ${via}\r\nFrom: ${firstHeader(bye!.headers, 'from')}\r\nTo: ${firstHeader(bye!.headers, 'to')}\r\nCall-ID: ${peer.callId}\r\nCSeq: ${firstHeader(bye!.headers, 'cseq')}\r\nContent-Length: 0\r\n\r\n`, peer.flow);
    clock.advance(TIMER_64T1);
    expect(transport.requests('BYE')).toHaveLength(3);
    expect(clock.armed).toBe(0);
  });

  it('ours, unanswered: repeated with back-off and given up after 64·T1 (timer F)', async () => {
    await establish();
    ua.hangUp(handler.invites[0]!.dialogId);
    clock.advance(TIMER_64T1 - 1);
    // Sent at 0, then T1, 3T1, 7T1, 15T1, then every T2 up to 64·T1.
    expect(transport.requests('BYE')).toHaveLength(11);
    clock.advance(1);
    clock.advance(TIMER_64T1);
    expect(transport.requests('BYE')).toHaveLength(11);
    expect(clock.armed).toBe(0);
  });

  it('hanging up twice, or after the peer\'s BYE, sends nothing more', async () => {
    const peer = await establish({ transport: 'TCP' });
    const id = handler.invites[0]!.dialogId;
    ua.hangUp(id);
    ua.hangUp(id);
    expect(transport.requests('BYE')).toHaveLength(1);
    peer.cseq = 2;
    peer.request('BYE');
    expect(transport.responses('2 BYE').map((r) => r.status)).toEqual([481]);
    expect(handler.endedCalls).toHaveLength(1);
  });
});

describe('probing a dialog\'s peer (in-dialog OPTIONS)', () => {
  it('sends OPTIONS inside the dialog with the next CSeq and resolves with the peer\'s answer', async () => {
    const peer = await establish({ headers: ['Record-Route: <sip:proxy.example;lr>'] });
    const id = handler.invites[0]!.dialogId;
    const asked = ua.probe(id)!;
    const [options] = transport.requests('OPTIONS');
    expect(options!.uri).toBe('sip:src@192.0.2.20:5070');
    expect(firstHeader(options!.headers, 'call-id')).toBe(peer.callId);
    expect(firstHeader(options!.headers, 'from')).toContain(`tag=${peer.toTag}`);
    expect(firstHeader(options!.headers, 'to')).toContain(`tag=${peer.fromTag}`);
    expect(firstHeader(options!.headers, 'route')).toBe('<sip:proxy.example;lr>');
    const seq = Number(/^(\d+) OPTIONS$/.exec(firstHeader(options!.headers, 'cseq')!)?.[1]);
    expect(seq).toBeGreaterThan(0);
    const via = firstHeader(options!.headers, 'via')!;
    transport.deliver(`SIP/2.0 481 Call/Transaction Does Not Exist\r\nVia: ${via}\r\nFrom: ${firstHeader(options!.headers, 'from')}\r\nTo: ${firstHeader(options!.headers, 'to')}\r\nCall-ID: ${peer.callId}\r\nCSeq: ${seq} OPTIONS\r\nContent-Length: 0\r\n\r\n`, peer.flow);
    expect(await asked).toBe(481);
    // The probe does not end the dialog by itself: the next request of ours takes the next CSeq.
    ua.hangUp(id);
    expect(firstHeader(transport.requests('BYE')[0]!.headers, 'cseq')).toBe(`${seq + 1} BYE`);
  });

  it('resolves 408 when the peer never answers (timer F), and undefined for a dialog it does not have', async () => {
    await establish();
    const asked = ua.probe(handler.invites[0]!.dialogId)!;
    clock.advance(TIMER_64T1);
    expect(await asked).toBe(408);
    expect(transport.requests('OPTIONS')).toHaveLength(11);
    expect(ua.probe('no-such-dialog')).toBeUndefined();
  });
});

describe('in-dialog re-INVITE and UPDATE', () => {
  it('answers an UPDATE or re-INVITE without SDP with no Content-Type and keeps Session-Expires and Require', async () => {
    // Regression: the answer used to drop its last header, assuming it was Content-Type.
    const peer = await establish({ headers: ['Require: siprec'] });
    handler.updateAnswer = { status: 200 };
    peer.cseq = 2;
    peer.request('UPDATE', { headers: ['Require: siprec', 'Supported: timer', 'Session-Expires: 1800;refresher=uac'] });
    peer.cseq = 3;
    peer.request('INVITE', { headers: ['Require: siprec', 'Supported: timer', 'Session-Expires: 900'] });
    await settle();
    const update = transport.responses('2 UPDATE').find((r) => r.status === 200)!;
    const reinvite = transport.responses('3 INVITE').find((r) => r.status === 200)!;
    for (const [res, secs] of [[update, 1800], [reinvite, 900]] as const) {
      expect(firstHeader(res.headers, 'content-type')).toBeUndefined();
      expect(firstHeader(res.headers, 'content-length')).toBe('0');
      expect(res.body.length).toBe(0);
      expect(firstHeader(res.headers, 'session-expires')).toBe(`${secs};refresher=uac`);
      expect(firstHeader(res.headers, 'require')).toBe('siprec, timer');
      expect(firstHeader(res.headers, 'contact')).toContain('+sip.srs');
    }
  });

  it('answers a re-INVITE with SDP and repeats its 2xx until the ACK', async () => {
    const peer = await establish();
    peer.cseq = 2;
    peer.request('INVITE', { body: SDP });
    await settle();
    expect(handler.updates).toHaveLength(1);
    expect(transport.responses('2 INVITE').map((r) => r.status)).toEqual([100, 200]);
    clock.advance(T1);
    expect(count('2 INVITE', 200)).toBe(2);
    peer.ack(2);
    clock.advance(TIMER_64T1);
    expect(count('2 INVITE', 200)).toBe(2);
    expect(handler.endedCalls).toEqual([]);
  });

  it('sends its BYE to the Contact of the latest accepted re-INVITE or UPDATE (target refresh)', async () => {
    const peer = await establish();
    peer.cseq = 2;
    peer.request('UPDATE', { contact: '<sip:src@192.0.2.30:5080>' });
    await settle();
    ua.hangUp(handler.invites[0]!.dialogId);
    expect(transport.requests('BYE')[0]!.uri).toBe('sip:src@192.0.2.30:5080');
  });

  it('refuses a re-INVITE whose CSeq is not newer with 500 and Retry-After', async () => {
    const peer = await establish();
    peer.request('INVITE', { body: SDP, cseq: 1 });
    await settle();
    const res = transport.responses('1 INVITE').filter((r) => r.status === 500);
    expect(res).toHaveLength(1);
    expect(firstHeader(res[0]!.headers, 'retry-after')).toBe('1');
    expect(handler.updates).toHaveLength(0);
  });

  it('answers a re-INVITE or UPDATE that collides with one still being answered 500 with a random Retry-After', async () => {
    const peer = await establish();
    handler.holdUpdates = true;
    peer.cseq = 2;
    peer.request('INVITE', { body: SDP });
    await settle();
    peer.cseq = 3;
    peer.request('INVITE', { body: SDP });
    peer.cseq = 4;
    peer.request('UPDATE', { body: '<recording/>', contentType: 'application/rs-metadata+xml' });
    peer.cseq = 5;
    peer.request('UPDATE'); // a refresh without a body does not touch the offer in progress
    await settle();
    for (const key of ['3 INVITE', '4 UPDATE']) {
      const [res] = transport.responses(key);
      expect(res!.status, key).toBe(500);
      const after = Number(firstHeader(res!.headers, 'retry-after'));
      expect(after >= 0 && after <= 10, key).toBe(true);
    }
    expect(ua.counters.refused.request_in_progress).toBe(2);
    handler.release();
    await settle();
    expect(transport.responses('2 INVITE').map((r) => r.status)).toEqual([100, 200]);
    expect(transport.responses('5 UPDATE').map((r) => r.status)).toEqual([200]);
    // Once the first is answered, the next one goes through.
    handler.holdUpdates = false;
    peer.ack(2);
    peer.cseq = 6;
    peer.request('INVITE', { body: SDP });
    await settle();
    expect(transport.responses('6 INVITE').map((r) => r.status)).toEqual([100, 200]);
    expect(handler.updates).toHaveLength(3);
  });

  it('answers requests for an unknown dialog 481', async () => {
    const peer = new Peer(transport, transport.flow());
    peer.request('UPDATE', { toTag: 'nosuch' });
    peer.request('INFO', { toTag: 'nosuch', cseq: 2 });
    peer.request('UPDATE', { toTag: '', cseq: 3 });
    await settle();
    expect(transport.responses().map((r) => r.status)).toEqual([481, 481, 481]);
  });

  it('passes the handler\'s rejection of an update with its Warning', async () => {
    const peer = await establish();
    handler.updateAnswer = { status: 415, warning: 'unsupported body type' };
    peer.cseq = 2;
    peer.request('UPDATE', { body: 'x', contentType: 'text/plain' });
    await settle();
    const [res] = transport.responses('2 UPDATE');
    expect(res!.status).toBe(415);
    expect(firstHeader(res!.headers, 'warning')).toContain('unsupported body type');
    expect(firstHeader(res!.headers, 'accept')).toContain('application/rs-metadata+xml');
  });
});

describe('SIPREC recognition', () => {
  it.each([
    ['Require: siprec', { headers: ['Require: siprec'] }],
    ['+sip.src in Contact', { contact: '<sip:src@192.0.2.20:5070>;+sip.src' }],
    [';src in Contact', { contact: '<sip:src@192.0.2.20:5070>;src' }],
  ])('marks a request with %s, and answers with +sip.srs', async (_, opts) => {
    await establish(opts);
    expect(handler.invites[0]!.isSiprec).toBe(true);
    const ok = transport.responses('1 INVITE').find((r) => r.status === 200)!;
    expect(firstHeader(ok.headers, 'contact')).toMatch(/;\+sip\.srs$/);
  });

  it('answers a plain INVITE without +sip.srs', async () => {
    await establish();
    expect(handler.invites[0]!.isSiprec).toBe(false);
    const ok = transport.responses('1 INVITE').find((r) => r.status === 200)!;
    expect(firstHeader(ok.headers, 'contact')).not.toContain('+sip.srs');
    expect(firstHeader(ok.headers, 'require')).toBeUndefined();
  });

  it('answers with +sip.srs when the handler found a recording-session body, and keeps it in the dialog', async () => {
    handler.inviteAnswer = { status: 200, sdp: ANSWER_SDP, siprec: true };
    const peer = await establish();
    const ok = transport.responses('1 INVITE').find((r) => r.status === 200)!;
    expect(firstHeader(ok.headers, 'contact')).toContain('+sip.srs');
    peer.cseq = 2;
    peer.request('UPDATE');
    await settle();
    expect(handler.updates[0]!.isSiprec).toBe(true);
    expect(firstHeader(transport.responses('2 UPDATE')[0]!.headers, 'contact')).toContain('+sip.srs');
  });
});

describe('other requests and errors', () => {
  it('answers OPTIONS with its capabilities', () => {
    const peer = new Peer(transport, transport.flow());
    peer.request('OPTIONS');
    const [res] = transport.responses('1 OPTIONS');
    expect(res!.status).toBe(200);
    expect(firstHeader(res!.headers, 'allow')).toContain('INVITE');
    expect(firstHeader(res!.headers, 'accept')).toContain('application/rs-metadata+xml');
    expect(firstHeader(res!.headers, 'supported')).toBe('siprec, timer, replaces');
    expect(firstHeader(res!.headers, 'server')).toBe('tallenne-test');
  });

  it('answers an OPTIONS probe 503 with Retry-After while it would refuse a new call, and 200 inside a dialog', async () => {
    const peer = await establish();
    handler.busy = { status: 503, retryAfterSeconds: 5, warning: 'at capacity (1 calls)' };
    const probe = new Peer(transport, transport.flow());
    probe.request('OPTIONS');
    const [res] = transport.responses(`1 OPTIONS`).filter((r) => firstHeader(r.headers, 'call-id') === probe.callId);
    expect(res!.status).toBe(503);
    expect(firstHeader(res!.headers, 'retry-after')).toBe('5');
    expect(firstHeader(res!.headers, 'warning')).toContain('at capacity');
    expect(firstHeader(res!.headers, 'allow')).toContain('INVITE');
    peer.cseq = 2;
    peer.request('OPTIONS');
    expect(transport.responses('2 OPTIONS').map((r) => r.status)).toEqual([200]);
    handler.busy = null;
    probe.cseq = 2;
    probe.request('OPTIONS');
    expect(transport.responses('2 OPTIONS').map((r) => r.status)).toEqual([200, 200]);
    ua.stopAccepting();
    probe.cseq = 3;
    probe.request('OPTIONS');
    const [stopping] = transport.responses('3 OPTIONS');
    expect([stopping!.status, firstHeader(stopping!.headers, 'retry-after')]).toEqual([503, '30']);
  });

  it('answers an unknown method 405 with Allow', () => {
    const peer = new Peer(transport, transport.flow());
    peer.request('SUBSCRIBE');
    const [res] = transport.responses('1 SUBSCRIBE');
    expect(res!.status).toBe(405);
    expect(firstHeader(res!.headers, 'allow')).toContain('BYE');
    expect(ua.counters.requests.SUBSCRIBE).toBe(1);
  });

  it('answers a malformed request 400 with the reason, counts it, and keeps running', async () => {
    const flow = transport.flow();
    transport.deliver('INVITE sip:rec@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5070;branch=z9hG4bKbad1\r\nFrom: <sip:p@192.0.2.20>;tag=1\r\nTo: <sip:rec@192.0.2.10>\r\nCall-ID: bad1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n', flow);
    const [res] = transport.responses();
    expect(res!.status).toBe(400);
    expect(firstHeader(res!.headers, 'warning')).toMatch(/CSeq method/);
    transport.deliver('complete garbage\r\n\r\n', flow);
    expect(ua.counters.malformed).toBe(2);
    expect(transport.responses()).toHaveLength(1);
    await establish();
  });

  it('counts a stream that could not be framed as malformed', () => {
    transport.failStream('no Content-Length on a stream transport', transport.flow('TCP'));
    expect(ua.counters.malformed).toBe(1);
    expect(transport.sent).toEqual([]);
  });

  it('rejects an unsupported Require with 420 without asking the handler', async () => {
    const peer = new Peer(transport, transport.flow());
    peer.invite({ headers: ['Require: 100rel'] });
    await settle();
    const res = peer.finalToInvite()!;
    expect(res.status).toBe(420);
    expect(firstHeader(res.headers, 'unsupported')).toBe('100rel');
    expect(handler.invites).toHaveLength(0);
  });

  it('answers 500 when the handler fails', async () => {
    handler.invite = async () => {
      throw new Error('boom');
    };
    const peer = new Peer(transport, transport.flow());
    peer.invite();
    await settle();
    expect(peer.finalToInvite()!.status).toBe(500);
  });

  it('answers an INVITE with an unreadable Contact 400 without asking the handler', async () => {
    const peer = new Peer(transport, transport.flow());
    peer.invite({ contact: '<sip:src@192.0.2.20' });
    await settle();
    const res = peer.finalToInvite()!;
    expect(res.status).toBe(400);
    expect(firstHeader(res.headers, 'warning')).toContain('unclosed <');
    expect(handler.invites).toHaveLength(0);
  });

  it('answers 500 when the handler fails on an update, and the call goes on', async () => {
    const peer = await establish();
    handler.update = async () => {
      throw new Error('boom');
    };
    peer.cseq = 2;
    peer.request('UPDATE');
    await settle();
    expect(transport.responses('2 UPDATE').map((r) => r.status)).toEqual([500]);
    expect(ua.dialogCount).toBe(1);
  });

  it('refuses new INVITEs with 503 once it stops accepting, and keeps existing dialogs', async () => {
    const first = await establish();
    ua.stopAccepting();
    expect(ua.accepting).toBe(false);
    const peer = new Peer(transport, transport.flow());
    peer.invite();
    await settle();
    const res = peer.finalToInvite()!;
    expect(res.status).toBe(503);
    expect(firstHeader(res.headers, 'retry-after')).toBe('30');
    first.cseq = 2;
    first.request('BYE');
    expect(transport.responses('2 BYE').map((r) => r.status)).toEqual([200]);
  });

  it('counts responses by status', async () => {
    await establish();
    expect(ua.counters.responses).toMatchObject({ 100: 1, 200: 1 });
    expect(ua.counters.requests).toMatchObject({ INVITE: 1, ACK: 1 });
  });

  it('close() stops every timer and closes the transport', async () => {
    await establish({ ack: false });
    handler.inviteAnswer = { status: 486 };
    new Peer(transport, transport.flow()).invite();
    await settle();
    expect(clock.armed).toBeGreaterThan(0);
    await ua.close();
    expect(clock.armed).toBe(0);
    expect(transport.closed).toBe(true);
  });
});

describe('colliding in-dialog requests', () => {
  const inv = (body: boolean): InDialogRequest => ({ method: 'INVITE', body });
  const upd = (body: boolean): InDialogRequest => ({ method: 'UPDATE', body });
  it.each([
    ['re-INVITE during a re-INVITE', inv(true), [inv(true)], true],
    ['re-INVITE without offer during a re-INVITE', inv(false), [inv(false)], true],
    ['UPDATE during an UPDATE', upd(false), [upd(false)], true],
    ['UPDATE with a body during a re-INVITE with an offer', upd(true), [inv(true)], true],
    ['re-INVITE with an offer during an UPDATE with metadata', inv(true), [upd(true)], true],
    ['refresh UPDATE during a re-INVITE', upd(false), [inv(true)], false],
    ['UPDATE with a body during a re-INVITE without one', upd(true), [inv(false)], false],
    ['anything when nothing is in progress', inv(true), [], false],
  ] as const)('%s', (_name, next, pending, expected) => {
    expect(collides(next, pending)).toBe(expected);
  });
});
