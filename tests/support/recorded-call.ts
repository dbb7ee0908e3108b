/**
 * A SIPREC call recorded by the real daemon: INVITE with metadata naming the customer and the
 * agent's extension, two tone legs, BYE after `ms`, then the stored recording's id.
 * `start()` alone leaves the call running (for tests that need a call in progress).
 */
import type { DaemonHandle } from './daemon.js';
import { SipTestClient } from './sip-client.js';
import { closeAll, sleep, startAll, tonesForAnswer, type TonedLeg } from './legs.js';
import { rsMetadata, siprecMultipart, siprecSdp } from './siprec-body.js';

export interface LiveCall {
  /** Ends the call and resolves with the stored recording's id. */
  hangUp(): Promise<string>;
}

export async function startCall(d: DaemonHandle, customer: string, agentExtension: string): Promise<LiveCall> {
  const client = new SipTestClient('udp', d.udpPort);
  await client.open();
  const { body, contentType } = siprecMultipart(siprecSdp(), rsMetadata(customer, agentExtension));
  const res = await client.invite({ body, contentType, headers: ['Require: siprec', 'Accept: application/sdp, application/rs-metadata'] });
  if (res.status !== 200) throw new Error(`INVITE answered ${res.status}`);
  const legs: TonedLeg[] = await tonesForAnswer(res.body.toString());
  startAll(legs);
  const seen = new Set(d.logs.filter((l) => l.msg === 'recording stored').map((l) => l.recording));
  return {
    async hangUp() {
      closeAll(legs);
      const bye = await client.bye();
      client.close();
      if (bye.status !== 200) throw new Error(`BYE answered ${bye.status}`);
      // Calls are ended one at a time by the tests that use this: the next stored recording is this one.
      const stored = await d.waitForLog((l) => l.msg === 'recording stored' && !seen.has(l.recording));
      return stored.recording as string;
    },
  };
}

export async function recordCall(d: DaemonHandle, customer: string, agentExtension: string, ms: number): Promise<string> {
  const call = await startCall(d, customer, agentExtension);
  await sleep(ms);
  return call.hangUp();
}
