/**
 * Per-channel listening: the <audio> element keeps streaming the Ogg Opus file with Range
 * requests; Web Audio takes its output (MediaElementSource), splits the two channels
 * (customer left, agent right), puts a gain on each and plays both in the middle, so solo and
 * mute are a gain of 0 or 1.
 */
import type { Channel } from './marks.js';
import { CHANNELS, audible, type MixState } from './mix.js';

export class ChannelMixer {
  private ctx: AudioContext | null = null;
  private readonly gains = new Map<Channel, GainNode>();

  constructor(private readonly audio: HTMLAudioElement) {}

  /** Builds the graph on first use; call it from a user gesture so the context may start. */
  async start(): Promise<void> {
    if (!this.ctx) {
      const ctx = new AudioContext();
      const source = ctx.createMediaElementSource(this.audio);
      const split = ctx.createChannelSplitter(2);
      source.connect(split);
      CHANNELS.forEach((ch, i) => {
        const gain = ctx.createGain();
        split.connect(gain, i);
        // A mono node into the stereo destination is heard on both sides.
        gain.connect(ctx.destination);
        this.gains.set(ch, gain);
      });
      this.ctx = ctx;
    }
    if (this.ctx.state === 'suspended') await this.ctx.resume();
  }

  apply(s: MixState): void {
    for (const ch of CHANNELS) {
      const g = this.gains.get(ch);
      if (g) g.gain.value = audible(s, ch) ? 1 : 0;
    }
  }

  /** The gain each channel plays at now (1 before the graph exists: the element plays as is). */
  gainOf(ch: Channel): number {
    return this.gains.get(ch)?.gain.value ?? 1;
  }

  async close(): Promise<void> {
    const ctx = this.ctx;
    this.ctx = null;
    this.gains.clear();
    if (ctx) await ctx.close();
  }
}
