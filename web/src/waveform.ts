/**
 * One channel's waveform on a canvas, from the server's min/max peaks (one pair per
 * `intervalMs`), with the played part in a second colour. Sized to its box and the screen's
 * pixel ratio; colours come from the page's CSS custom properties.
 */
import { columnsOf, type ChannelPeaks } from './peaks.js';

export class Waveform {
  private peaks: ChannelPeaks | null = null;
  private intervalMs = 20;
  private durationMs = 0;
  private scale = 1;
  private progress = 0;
  private silenced = false;
  /** The columns for the last width drawn: redrawing the playhead does not reduce the peaks again. */
  private cols: { key: string; values: Array<[number, number]> } | null = null;

  constructor(private readonly canvas: HTMLCanvasElement) {}

  setPeaks(p: ChannelPeaks | null, intervalMs: number, durationMs: number, scale: number): void {
    this.peaks = p;
    this.intervalMs = intervalMs;
    this.durationMs = durationMs;
    this.scale = scale;
    this.cols = null;
    this.draw();
  }

  /** Fraction of the call played, 0..1. */
  setProgress(fraction: number): void {
    if (fraction === this.progress) return;
    this.progress = fraction;
    this.draw();
  }

  /** Drawn paler while the channel is not heard (muted, or another is solo). */
  setSilenced(on: boolean): void {
    this.silenced = on;
    this.draw();
  }

  draw(): void {
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * ratio));
    const hgt = Math.max(1, Math.round(c.clientHeight * ratio));
    if (c.width !== w || c.height !== hgt) {
      c.width = w;
      c.height = hgt;
    }
    const g = c.getContext('2d');
    if (!g) return;
    const css = getComputedStyle(c);
    const played = css.getPropertyValue('--wave-played').trim() || '#1d5fa8';
    const rest = css.getPropertyValue('--wave-rest').trim() || '#8aa4c2';
    const axis = css.getPropertyValue('--wave-axis').trim() || '#c8d0da';
    g.clearRect(0, 0, w, hgt);
    g.globalAlpha = this.silenced ? 0.35 : 1;
    const mid = hgt / 2;
    g.fillStyle = axis;
    g.fillRect(0, Math.floor(mid), w, Math.max(1, Math.round(ratio)));
    if (!this.peaks || this.durationMs <= 0) return;
    const step = Math.max(1, Math.round(2 * ratio));
    const key = `${w}/${step}`;
    if (this.cols?.key !== key) this.cols = { key, values: columnsOf(this.peaks, Math.floor(w / step), this.intervalMs, this.durationMs, this.scale) };
    const cols = this.cols.values;
    const playedUpTo = this.progress * cols.length;
    cols.forEach(([lo, hi], i) => {
      g.fillStyle = i < playedUpTo ? played : rest;
      const top = mid - hi * (mid - 1);
      const bottom = mid - lo * (mid - 1);
      g.fillRect(i * step, top, Math.max(1, step - 1), Math.max(1, bottom - top));
    });
    g.globalAlpha = 1;
  }
}
