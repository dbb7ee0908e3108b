/**
 * Storage for the timeline's audio, one 20 ms block (a frame of one leg) at a time, shared
 * by every call on the thread. A leg holds blocks only where it has audio waiting to be
 * emitted (about LAG_MS of it while it talks, none while it is silent or its packets are
 * suppressed), not a ring the length of the whole placement window: that window is mostly
 * empty, and at hundreds of live calls per thread it was most of the encoder's memory.
 *
 * Blocks live in slabs of SLAB_BLOCKS; a block's slot number names its slab and place. Slots
 * are handed out from a free list and given back, zeroed, when their frame is emitted. A slab
 * is added when every slot is in use (nothing is copied) and slabs are never dropped, so the
 * thread keeps what its busiest moment needed, plus at most one slab.
 */

/** Blocks per slab: 40 KB of 8 kHz frames. */
const SLAB_BLOCKS = 128;
const SLAB_SHIFT = 7;

export class FrameArena {
  readonly blockSamples: number;
  private readonly slabs: Int16Array[] = [];
  /** Free slots, a stack: free[0 .. freeCount). */
  private free = new Int32Array(0);
  private freeCount = 0;

  constructor(blockSamples: number) {
    this.blockSamples = blockSamples;
  }

  /** Slots in the arena. */
  get capacity(): number {
    return this.slabs.length * SLAB_BLOCKS;
  }

  /** Slots handed out and not given back. */
  get inUse(): number {
    return this.capacity - this.freeCount;
  }

  /** A zeroed block's slot. */
  take(): number {
    if (this.freeCount === 0) this.addSlab();
    return this.free[--this.freeCount]!;
  }

  /** Gives a slot back, zeroed for its next user. */
  give(slot: number): void {
    const at = this.offsetOf(slot);
    this.slabOf(slot).fill(0, at, at + this.blockSamples);
    this.free[this.freeCount++] = slot;
  }

  /** The slab that holds `slot`'s samples... */
  slabOf(slot: number): Int16Array {
    return this.slabs[slot >> SLAB_SHIFT]!;
  }

  /** ...and where in it they start. */
  offsetOf(slot: number): number {
    return (slot & (SLAB_BLOCKS - 1)) * this.blockSamples;
  }

  private addSlab(): void {
    const first = this.slabs.length * SLAB_BLOCKS;
    this.slabs.push(new Int16Array(SLAB_BLOCKS * this.blockSamples));
    // The stack is empty when this runs: room for every slot, the new ones free.
    const free = new Int32Array(first + SLAB_BLOCKS);
    for (let i = 0; i < SLAB_BLOCKS; i++) free[i] = first + SLAB_BLOCKS - 1 - i;
    this.free = free;
    this.freeCount = SLAB_BLOCKS;
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
