/**
 * Transactions, dialogs and the retransmission helper on their own, with a fake clock: the
 * schedules of RFC 3261 and the state tables, including the moves they refuse.
 */
import { describe, expect, it } from 'vitest';
import { ClientTransaction, ServerTransaction, serverTransactionKey, TIMEOUT_STATUS } from '../../../src/sip/transaction.js';
import { Dialog, dialogIdOf } from '../../../src/sip/dialog.js';
import { Retransmitter, T1, T2, T4, TIMER_64T1 } from '../../../src/sip/retransmit.js';
import { IllegalSipTransition } from '../../../src/sip/state.js';
import { parseSipMessage, type SipRequest } from '../../../src/sip/message.js';
import type { Flow } from '../../../src/sip/transport.js';
import { FakeClock } from './fakes.js';

function request(method: string, extra: string[] = [], via = 'SIP/2.0/UDP 192.0.2.20:5070;branch=z9hG4bKt1'): SipRequest {
  return parseSipMessage(Buffer.from([
    `${method} sip:rec@192.0.2.10 SIP/2.0`, `Via: ${via}`, 'From: <sip:src@192.0.2.20>;tag=peer',
    'To: <sip:rec@192.0.2.10>', 'Call-ID: txn-1', `CSeq: 4 ${method}`, ...extra, 'Content-Length: 0', '', '',
  ].join('\r\n'), 'latin1')) as SipRequest;
}

function flow(transport: Flow['transport'] = 'UDP'): Flow & { sent: string[] } {
  const sent: string[] = [];
  return { transport, local: { address: '192.0.2.10', port: 5060 }, remote: { address: '192.0.2.20', port: 5070 }, send: (d) => sent.push(d.toString('latin1')), sent };
}

/** Times at which `send` was called, against the fake clock. */
function schedule(clock: FakeClock, until: number, reliable = false): number[] {
  const at: number[] = [];
  const r = new Retransmitter(clock, { resend: () => at.push(clock.now), reliable, onTimeout: () => at.push(-clock.now) });
  clock.advance(until);
  void r;
  return at;
}

describe('Retransmitter', () => {
  it('repeats at T1, 2T1, 4T1, then every T2, and times out at 64·T1', () => {
    expect(schedule(new FakeClock(), 2 * TIMER_64T1)).toEqual([500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500, -32000]);
  });

  it('only times out on a reliable transport', () => {
    expect(schedule(new FakeClock(), 2 * TIMER_64T1, true)).toEqual([-32000]);
  });

  it('repeats every T2 once slowed down, and does nothing after stop()', () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const r = new Retransmitter(clock, { resend: () => at.push(clock.now), reliable: false, onTimeout: () => at.push(-1) });
    r.slowDown();
    clock.advance(T1 + 2 * T2);
    expect(at).toEqual([T1, T1 + T2, T1 + 2 * T2]);
    r.stop();
    expect(clock.armed).toBe(0);
    clock.advance(TIMER_64T1);
    expect(at).toHaveLength(3);
  });
});

describe('serverTransactionKey', () => {
  it('matches ACK and CANCEL to their INVITE by branch and sent-by', () => {
    const key = serverTransactionKey(request('INVITE'));
    expect(serverTransactionKey(request('ACK'))).toBe(key);
    expect(serverTransactionKey(request('CANCEL'))).toBe(key);
    expect(serverTransactionKey(request('BYE'))).not.toBe(key);
    expect(serverTransactionKey(request('INVITE', [], 'SIP/2.0/UDP 192.0.2.21:5070;branch=z9hG4bKt1'))).not.toBe(key);
  });

  it('falls back to Call-ID, CSeq and From tag for peers without the branch cookie', () => {
    const old = serverTransactionKey(request('INVITE', [], 'SIP/2.0/UDP 192.0.2.20:5070;branch=1'));
    expect(old).toBe('txn-1|4|peer|INVITE');
    expect(serverTransactionKey(request('ACK', [], 'SIP/2.0/UDP 192.0.2.20:5070'))).toBe(old);
  });
});

describe('ServerTransaction', () => {
  const make = (method: string, f = flow()) => {
    const clock = new FakeClock();
    const ended: string[] = [];
    const txn = new ServerTransaction('k', request(method), f, 'tag', clock, (t) => ended.push(t.state));
    return { clock, txn, ended, f };
  };

  it('INVITE failure: proceeding → completed → confirmed → terminated after T4 on UDP', () => {
    const { clock, txn, ended, f } = make('INVITE');
    expect(txn.state).toBe('proceeding');
    txn.provisional(Buffer.from('100'));
    txn.retransmitted();
    expect(f.sent).toEqual(['100', '100']);
    txn.final(486, Buffer.from('486'));
    expect([txn.state, txn.pending]).toEqual(['completed', false]);
    clock.advance(T1);
    txn.retransmitted();
    expect(f.sent.slice(2)).toEqual(['486', '486', '486']);
    txn.ack();
    expect(txn.state).toBe('confirmed');
    txn.retransmitted();
    clock.advance(T4 - 1);
    expect(f.sent).toHaveLength(5);
    expect(ended).toEqual([]);
    clock.advance(1);
    expect(ended).toEqual(['terminated']);
    expect(clock.armed).toBe(0);
  });

  it('INVITE 2xx: accepted for 64·T1, absorbing retransmissions, then terminated', () => {
    const { clock, txn, ended, f } = make('INVITE', flow('TCP'));
    txn.final(200, Buffer.from('200'));
    expect(txn.state).toBe('accepted');
    txn.retransmitted();
    txn.ack();
    expect(f.sent).toEqual(['200']);
    expect(txn.state).toBe('accepted');
    clock.advance(TIMER_64T1);
    expect(ended).toEqual(['terminated']);
  });

  it('non-INVITE: kept 64·T1 over UDP (timer J) to repeat its answer, ended at once over TCP', () => {
    const udp = make('BYE');
    expect(udp.txn.state).toBe('trying');
    udp.txn.final(200, Buffer.from('200'));
    udp.txn.retransmitted();
    expect(udp.f.sent).toEqual(['200', '200']);
    udp.clock.advance(TIMER_64T1);
    expect(udp.ended).toEqual(['terminated']);
    const tcp = make('BYE', flow('TCP'));
    tcp.txn.final(200, Buffer.from('200'));
    expect(tcp.ended).toEqual(['terminated']);
  });

  it('refuses moves its table does not allow', () => {
    const invite = make('INVITE').txn;
    invite.final(200, Buffer.from('200'));
    expect(() => invite.final(500, Buffer.from('500'))).toThrow(IllegalSipTransition);
    expect(() => invite.provisional(Buffer.from('100'))).toThrow();
    const bye = make('BYE').txn;
    expect(() => bye.provisional(Buffer.from('100'))).toThrow();
    bye.terminate();
    expect(() => bye.final(200, Buffer.from('200'))).toThrow('BYE server transaction cannot move from terminated to completed');
  });
});

describe('ClientTransaction', () => {
  it('resolves with the final status and stops repeating; a 1xx slows the repeats to T2', async () => {
    const clock = new FakeClock();
    const f = flow();
    const done: string[] = [];
    const txn = new ClientTransaction('b', Buffer.from('BYE'), f, clock, (t) => done.push(t.branch));
    expect(f.sent).toEqual(['BYE']);
    txn.response(100);
    expect(txn.state).toBe('proceeding');
    clock.advance(T1 + T2);
    expect(f.sent).toHaveLength(3);
    txn.response(200);
    txn.response(200);
    expect(await txn.done).toBe(200);
    expect(done).toEqual(['b']);
    clock.advance(TIMER_64T1);
    expect(f.sent).toHaveLength(3);
  });

  it('gives up after 64·T1 (timer F) with TIMEOUT_STATUS', async () => {
    const clock = new FakeClock();
    const txn = new ClientTransaction('b', Buffer.from('BYE'), flow('TCP'), clock, () => undefined);
    clock.advance(TIMER_64T1);
    expect(await txn.done).toBe(TIMEOUT_STATUS);
    expect(txn.state).toBe('terminated');
  });
});

describe('Dialog', () => {
  const invite = request('INVITE', ['Contact: <sip:src@192.0.2.20:5070;transport=tcp>;+sip.src, <sip:other@192.0.2.21>', 'Record-Route: <sip:p1.example;lr>', 'Record-Route: <sip:p2.example;lr>']);

  it('takes its identity and route from the INVITE (§12.1.1)', () => {
    const d = Dialog.fromInvite(invite, flow(), 'ours', true);
    expect(d.id).toBe('txn-1|ours|peer');
    expect(d.remoteTarget).toBe('sip:src@192.0.2.20:5070;transport=tcp');
    expect(d.routeSet).toEqual(['<sip:p1.example;lr>', '<sip:p2.example;lr>']);
    expect(d.siprec).toBe(true);
    const bye = parseSipMessage(d.request('BYE', { transport: 'UDP', host: '192.0.2.10', port: 5060 }, 'z9hG4bKx', 'ua')) as SipRequest;
    expect(bye.uri).toBe(d.remoteTarget);
    const first = (n: string) => bye.headers.find((x) => x.name === n)?.value;
    expect(first('from')).toBe('<sip:rec@192.0.2.10>;tag=ours');
    expect(first('to')).toBe('<sip:src@192.0.2.20>;tag=peer');
    expect(bye.headers.filter((x) => x.name === 'route').map((x) => x.value)).toEqual(d.routeSet);
    const inDialog = request('BYE').headers.map((x) => (x.name === 'to' ? { name: 'to', value: `${x.value};tag=ours` } : x));
    expect(dialogIdOf({ ...request('BYE'), headers: inDialog })).toBe(d.id);
    expect(dialogIdOf(request('BYE'))).toBeUndefined();
  });

  it('accepted → confirmed by the ACK with the INVITE\'s CSeq; repeats its 2xx until then', () => {
    const clock = new FakeClock();
    const f = flow();
    const d = Dialog.fromInvite(invite, f, 'ours', false);
    let noAck = 0;
    d.awaitAck(4, Buffer.from('200'), clock, () => noAck++);
    clock.advance(T1);
    expect(f.sent).toEqual(['200']);
    expect(d.ack(3)).toBe(false);
    expect(d.ack(4)).toBe(true);
    expect(d.state).toBe('confirmed');
    expect(d.ack(4)).toBe(false);
    clock.advance(TIMER_64T1);
    expect(f.sent).toEqual(['200']);
    expect(noAck).toBe(0);
  });

  it('orders re-INVITEs by CSeq and ends once', () => {
    const d = Dialog.fromInvite(invite, flow(), 'ours', false);
    expect(d.acceptRemoteSeq(4, 'INVITE')).toBe(false);
    expect(d.acceptRemoteSeq(3, 'UPDATE')).toBe(true);
    expect(d.acceptRemoteSeq(5, 'INVITE')).toBe(true);
    expect(d.acceptRemoteSeq(5, 'INVITE')).toBe(false);
    expect(d.terminate()).toBe(true);
    expect(d.terminate()).toBe(false);
    expect(d.state).toBe('terminated');
  });
});
