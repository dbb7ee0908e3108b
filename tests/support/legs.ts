/** Sends a G.711 tone on every answered audio m-line of an SDP answer, in the codec the daemon chose. */
import { answerMedia } from './sip-client.js';
import { RtpSender } from './rtp-sender.js';

export const LEG_TONES = [440, 1000, 700, 1600] as const;

export interface TonedLeg {
  /** m-line index in the answer. */
  readonly index: number;
  readonly label?: string;
  readonly toneHz: number;
  readonly sender: RtpSender;
}

/** Opens one sender per answered m-line (port ≠ 0) whose first format is PCMU or PCMA. */
export async function tonesForAnswer(sdp: string, host = '127.0.0.1'): Promise<TonedLeg[]> {
  const legs: TonedLeg[] = [];
  const media = answerMedia(sdp);
  for (const [index, m] of media.entries()) {
    if (m.port === 0) continue;
    const first = m.rtpmap.find((r) => r.startsWith(`${m.payloadTypes[0]} `)) ?? '';
    const law = /PCMA/i.test(first) ? 'PCMA' : 'PCMU';
    const toneHz = LEG_TONES[legs.length % LEG_TONES.length]!;
    const sender = new RtpSender({ port: m.port, host, toneHz, law, payloadType: m.payloadTypes[0]! });
    await sender.open();
    legs.push({ index, ...(m.label !== undefined ? { label: m.label } : {}), toneHz, sender });
  }
  return legs;
}

export function startAll(legs: readonly TonedLeg[]): void {
  for (const l of legs) l.sender.start();
}

export function closeAll(legs: readonly TonedLeg[]): void {
  for (const l of legs) l.sender.close();
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
