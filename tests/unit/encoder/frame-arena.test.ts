/** FrameArena: blocks handed out zeroed, given back, and slabs added without moving a block. */
import { describe, expect, it } from 'vitest';
import { FrameArena } from '../../../src/encoder/frame-arena.js';

describe('FrameArena', () => {
  it('hands out zeroed blocks, keeps their samples across growth, and reuses the ones given back', () => {
    const a = new FrameArena(160);
    const slots: number[] = [];
    for (let i = 0; i < 300; i++) {
      const s = a.take();
      expect(a.slabOf(s).subarray(a.offsetOf(s), a.offsetOf(s) + 160).every((x) => x === 0)).toBe(true);
      a.slabOf(s).fill(i + 1, a.offsetOf(s), a.offsetOf(s) + 160);
      slots.push(s);
    }
    expect(new Set(slots).size).toBe(300);
    expect(a.inUse).toBe(300);
    expect(a.capacity).toBeGreaterThanOrEqual(300);
    expect(a.capacity).toBeLessThan(300 + 128);
    // Every block still holds what was written into it after the slabs were added.
    slots.forEach((s, i) => expect(a.slabOf(s)[a.offsetOf(s) + 159]).toBe(i + 1));
    for (const s of slots) a.give(s);
    expect(a.inUse).toBe(0);
    const capacity = a.capacity;
    const again = a.take();
    expect(slots).toContain(again);
    expect(a.slabOf(again).subarray(a.offsetOf(again), a.offsetOf(again) + 160).every((x) => x === 0)).toBe(true);
    expect(a.capacity).toBe(capacity);
  });
});
