/**
 * G.722 decoder (ITU-T G.722, 64 kbit/s mode): each byte carries a 6-bit lower sub-band
 * ADPCM code and a 2-bit higher sub-band code; the two 8 kHz sub-bands are recombined by the
 * 24-tap receive QMF into two 16 kHz output samples. RTP stamps G.722 at 8000 Hz (RFC 3551)
 * even though it decodes to 16000 samples a second.
 *
 * The decoder is stateful (adaptive predictors and the QMF delay line): keep one per RTP
 * stream and reset it when the stream is discontinuous.
 */

/** Receive QMF coefficients (first half; the filter is symmetric). */
const QMF = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11] as const;

/** Inverse quantiser of the lower band with all 6 bits (reconstruction). */
const QM6 = Int32Array.from([
  -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
  -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728,
  24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
  4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
]);
/** Inverse quantiser of the lower band with the 4 most significant bits (predictor update). */
const QM4 = Int32Array.from([0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0]);
/** Inverse quantiser of the higher band. */
const QM2 = Int32Array.from([-7408, -1616, 7408, 1616]);
/** Log-scale factor multipliers (lower band) indexed through RL42. */
const WL = Int32Array.from([-60, -30, 58, 172, 334, 538, 1198, 3042]);
const RL42 = Int32Array.from([0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0]);
/** Log-scale factor multipliers (higher band) indexed through RH2. */
const WH = Int32Array.from([0, -214, 798]);
const RH2 = Int32Array.from([2, 1, 2, 1]);
/** Inverse log-to-linear table for the scale factor. */
const ILB = Int32Array.from([
  2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
  2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
]);

function sat16(x: number): number {
  return x > 32767 ? 32767 : x < -32768 ? -32768 : x;
}

/** The adaptive predictor of one sub-band: 2 poles, 6 zeros. */
class SubBand {
  /** Scale factor (delta) and its log (nabla). */
  det: number;
  nb = 0;
  /** Predicted signal and its pole/zero parts. */
  s = 0;
  sp = 0;
  sz = 0;
  /** Quantised difference signal history d[0..6], zero coefficients b[1..6]. */
  readonly d = new Int32Array(7);
  readonly b = new Int32Array(7);
  /** Partial reconstructions p[0..2], reconstructed signal r[0..2], pole coefficients a[1..2]. */
  readonly p = new Int32Array(3);
  readonly r = new Int32Array(3);
  readonly a = new Int32Array(3);

  constructor(det: number) {
    this.det = det;
  }

  /** Scale factor from the log-scale factor; `shiftBase` is 8 (lower) or 10 (higher band). */
  scale(shiftBase: number): void {
    const idx = (this.nb >> 6) & 31;
    const shift = shiftBase - (this.nb >> 11);
    const lin = shift < 0 ? ILB[idx]! << -shift : ILB[idx]! >> shift;
    this.det = lin << 2;
  }

  /** Updates both predictors with the quantised difference `dq` and computes the next estimate. */
  update(dq: number): void {
    const { d, b, p, r, a } = this;
    d[0] = dq;
    r[0] = sat16(this.s + dq);
    p[0] = sat16(this.sz + dq);

    // Second pole coefficient: leaks towards zero, nudged by the sign agreement of p.
    const sg0 = p[0]! >> 15;
    const sg1 = p[1]! >> 15;
    const sg2 = p[2]! >> 15;
    const a1x4 = sat16(a[1]! << 2);
    let t = sg0 === sg1 ? -a1x4 : a1x4;
    if (t > 32767) t = 32767;
    let a2 = (sg0 === sg2 ? 128 : -128) + (t >> 7) + ((a[2]! * 32512) >> 15);
    if (a2 > 12288) a2 = 12288;
    else if (a2 < -12288) a2 = -12288;

    // First pole coefficient, bounded so that the pole pair stays stable.
    let a1 = sat16((sg0 === sg1 ? 192 : -192) + ((a[1]! * 32640) >> 15));
    const lim = sat16(15360 - a2);
    if (a1 > lim) a1 = lim;
    else if (a1 < -lim) a1 = -lim;

    // Zero coefficients: sign-sign LMS with leakage.
    const step = dq === 0 ? 0 : 128;
    const sgd = dq >> 15;
    for (let i = 6; i >= 1; i--) {
      const agree = d[i]! >> 15 === sgd;
      b[i] = sat16((agree ? step : -step) + ((b[i]! * 32640) >> 15));
    }
    for (let i = 6; i >= 1; i--) d[i] = d[i - 1]!;
    r[2] = r[1]!;
    r[1] = r[0]!;
    p[2] = p[1]!;
    p[1] = p[0]!;
    a[1] = a1;
    a[2] = a2;

    this.sp = sat16(((a[1]! * sat16(r[1]! + r[1]!)) >> 15) + ((a[2]! * sat16(r[2]! + r[2]!)) >> 15));
    let sz = 0;
    for (let i = 6; i >= 1; i--) sz += (b[i]! * sat16(d[i]! + d[i]!)) >> 15;
    this.sz = sat16(sz);
    this.s = sat16(this.sp + this.sz);
  }
}

export class G722Decoder {
  private low = new SubBand(32);
  private high = new SubBand(8);
  /** QMF delay line: 24 most recent sub-band sums/differences. */
  private qmf = new Int32Array(24);

  reset(): void {
    this.low = new SubBand(32);
    this.high = new SubBand(8);
    this.qmf.fill(0);
  }

  /** Decodes `payload` into `out` from `offset`; returns the samples written (2 per byte). */
  decode(payload: Uint8Array, out: Int16Array, offset = 0): number {
    const low = this.low;
    const high = this.high;
    const x = this.qmf;
    const n = Math.min(payload.length, (out.length - offset) >> 1);
    let o = offset;
    for (let i = 0; i < n; i++) {
      const code = payload[i]!;
      const ilow = code & 0x3f;
      const ihigh = code >> 6;

      // Lower band: reconstruct with 6 bits, adapt with the top 4.
      let rlow = low.s + ((low.det * QM6[ilow]!) >> 15);
      if (rlow > 16383) rlow = 16383;
      else if (rlow < -16384) rlow = -16384;
      const i4 = ilow >> 2;
      const dlow = (low.det * QM4[i4]!) >> 15;
      let nbl = ((low.nb * 127) >> 7) + WL[RL42[i4]!]!;
      if (nbl < 0) nbl = 0;
      else if (nbl > 18432) nbl = 18432;
      low.nb = nbl;
      low.scale(8);
      low.update(dlow);

      // Higher band.
      const dhigh = (high.det * QM2[ihigh]!) >> 15;
      let rhigh = dhigh + high.s;
      if (rhigh > 16383) rhigh = 16383;
      else if (rhigh < -16384) rhigh = -16384;
      let nbh = ((high.nb * 127) >> 7) + WH[RH2[ihigh]!]!;
      if (nbh < 0) nbh = 0;
      else if (nbh > 22528) nbh = 22528;
      high.nb = nbh;
      high.scale(10);
      high.update(dhigh);

      // Receive QMF: two output samples per sub-band pair.
      x.copyWithin(0, 2);
      x[22] = rlow + rhigh;
      x[23] = rlow - rhigh;
      let even = 0;
      let odd = 0;
      for (let k = 0; k < 12; k++) {
        even += x[2 * k]! * QMF[k]!;
        odd += x[2 * k + 1]! * QMF[11 - k]!;
      }
      out[o++] = sat16(odd >> 11);
      out[o++] = sat16(even >> 11);
    }
    return o - offset;
  }
}
