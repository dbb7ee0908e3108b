/** Which channels are heard, from the solo and mute buttons. Pure. */
import type { Channel } from './marks.js';

/** In file order: the customer is channel 0 (left), the agent channel 1 (right). */
export const CHANNELS: readonly Channel[] = ['customer', 'agent'];

export interface MixState {
  readonly solo: ReadonlySet<Channel>;
  readonly muted: ReadonlySet<Channel>;
}

/** Any solo channel plays alone (solo outranks mute); otherwise every channel not muted plays. */
export function audible(s: MixState, ch: Channel): boolean {
  return s.solo.size > 0 ? s.solo.has(ch) : !s.muted.has(ch);
}
