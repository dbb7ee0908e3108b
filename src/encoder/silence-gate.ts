/**
 * The silence gate of one leg: which 20 ms frames may be fed to the encoder as digital
 * silence (so that its settled silence packet can be reused instead of running libopus).
 *
 * A frame is quiet when its energy is under SILENCE_RMS, which covers no packets, comfort
 * noise and digital silence alike. A frame is gated when the leg has been quiet for more than
 * the hangover up to and including it (speech tails are not cut) and the next frame is quiet
 * too (one frame of look-ahead, so an onset is never gated).
 */

/**
 * Energy under which a frame counts as silence: an RMS of 64 (-54 dBFS), well below soft
 * speech (about -45 dBFS) and above the idle noise of a telephone line.
 */
export const SILENCE_RMS = 64;
/** Quiet frames a leg must have in a row before it is gated. */
export const SILENCE_HANGOVER_FRAMES = 10;

export class SilenceGate {
  private quietRun = 0;

  /** Measures one frame (in order, one frame ahead of the encoder) and says whether it is quiet. */
  observe(pcm: Int16Array): boolean {
    let energy = 0;
    for (let i = 0; i < pcm.length; i++) energy += pcm[i]! * pcm[i]!;
    const quiet = energy < SILENCE_RMS * SILENCE_RMS * pcm.length;
    this.quietRun = quiet ? this.quietRun + 1 : 0;
    return quiet;
  }

  /** Quiet frames in a row up to the last frame observed. */
  get run(): number {
    return this.quietRun;
  }
}

/**
 * Whether a frame is fed as silence: `runAtFrame` is the quiet run as it was after observing
 * the frame, `nextQuiet` whether the frame after it is quiet (false at the end of the call).
 */
export function isGated(runAtFrame: number, nextQuiet: boolean): boolean {
  return runAtFrame > SILENCE_HANGOVER_FRAMES && nextQuiet;
}
