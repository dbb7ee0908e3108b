/** Waveform peaks (-1..1, one min/max pair per interval) reduced to what a canvas draws. Pure. */
export interface ChannelPeaks {
  readonly min: readonly number[];
  readonly max: readonly number[];
}

/** Quieter recordings are drawn taller, but never more than this much (hiss stays small). */
const MAX_GAIN = 8;

/**
 * The value drawn at full height: the loudest peak of the recording (peaks are -1..1), so
 * both channels share one scale and a quiet call still shows its shape.
 */
export function peakScale(channels: readonly ChannelPeaks[]): number {
  let top = 0;
  for (const c of channels) {
    for (const v of c.max) if (Math.abs(v) > top) top = Math.abs(v);
    for (const v of c.min) if (Math.abs(v) > top) top = Math.abs(v);
  }
  return Math.min(1, Math.max(top, 1 / MAX_GAIN));
}

/** The min/max of the peaks that fall into each of `columns` equal slices of the call. */
export function columnsOf(p: ChannelPeaks, columns: number, intervalMs: number, durationMs: number, scale: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const n = Math.min(p.min.length, p.max.length);
  const msPerColumn = durationMs / columns;
  for (let c = 0; c < columns; c++) {
    const from = Math.floor((c * msPerColumn) / intervalMs);
    const to = Math.max(from + 1, Math.floor(((c + 1) * msPerColumn) / intervalMs));
    let lo = 0;
    let hi = 0;
    for (let i = from; i < to && i < n; i++) {
      lo = Math.min(lo, p.min[i]! / scale);
      hi = Math.max(hi, p.max[i]! / scale);
    }
    out.push([Math.max(-1, lo), Math.min(1, hi)]);
  }
  return out;
}
