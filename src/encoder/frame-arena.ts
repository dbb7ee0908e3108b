/**
 * Storage for the timeline's audio, one 20 ms block (a frame of one leg) at a time, shared
 * by every call on the thread. A leg holds blocks only where it has audio waiting to be
 * emitted (about LAG_MS of it while it talks, none while it is silent or its packets are
 * suppressed), not a ring the length of the whole placement window: that window is mostly
 * empty, and at hundreds of live calls per thread it was most of the encoder's memory.
 *
 * A block is a slot in one Int16Array; slots are handed out from a free list and given back,
 * zeroed, when their frame is emitted. The array grows (doubling) when every slot is in use
 * and never shrinks, so the thread keeps what its busiest moment needed.
 */

export class FrameArena {
  readonly blockSamples: number;
  /** All blocks, slot k at [k × blockSamples, (k + 1) × blockSamples). */
  samples: Int16Array;
  /** Free slots, a stack: free[0 .. freeCount). */
  private free: Int32Array;
  private freeCount: number;

  constructor(blockSamples: number, initialBlocks = 64) {
    this.blockSamples = blockSamples;
    this.samples = new Int16Array(blockSamples * initialBlocks);
    this.free = new Int32Array(initialBlocks);
    for (let i = 0; i < initialBlocks; i++) this.free[i] = initialBlocks - 1 - i;
    this.freeCount = initialBlocks;
  }

  /** Slots in the arena. */
  get capacity(): number {
    return this.free.length;
  }

  /** Slots handed out and not given back. */
  get inUse(): number {
    return this.free.length - this.freeCount;
  }

  /** A zeroed block's slot. */
  take(): number {
    if (this.freeCount === 0) this.grow();
    return this.free[--this.freeCount]!;
  }

  /** Gives a slot back, zeroed for its next user. */
  give(slot: number): void {
    const at = slot * this.blockSamples;
    this.samples.fill(0, at, at + this.blockSamples);
    this.free[this.freeCount++] = slot;
  }

  private grow(): void {
    const old = this.free.length;
    const size = old * 2;
    const samples = new Int16Array(this.blockSamples * size);
    samples.set(this.samples);
    this.samples = samples;
    const free = new Int32Array(size);
    // Only the new slots are free (the stack is empty when this runs).
    for (let i = 0; i < size - old; i++) free[i] = size - 1 - i;
    this.free = free;
    this.freeCount = size - old;
  }
}

const arenas = new Map<number, FrameArena>();

/** The thread's arena for blocks of `blockSamples` (one per frame size: 8 and 16 kHz). */
export function frameArena(blockSamples: number): FrameArena {
  let a = arenas.get(blockSamples);
  if (!a) {
    a = new FrameArena(blockSamples);
    arenas.set(blockSamples, a);
  }
  return a;
}
