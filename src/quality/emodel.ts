/**
 * An estimated MOS for one leg, from the ITU-T G.107 E-model in its simplified form:
 *
 *   R = Ro − Is − Id − Ie,eff + A
 *
 * - Ro and Is at the G.107 default values (Table 2: SLR 8, RLR 2, STMR 15, Ds 3, Nc −70,
 *   Ps = Pr = 35, ...): Ro = 94.77, Is = 1.43. A (the advantage factor) is 0.
 * - Id from the one-way mouth-to-ear delay Ta, with the default echo path: T = Ta (talker
 *   echo, TELR 65 dB) and Tr = 2·Ta (listener echo, WEPL 110 dB), so Id = Idte + Idle + Idd
 *   as G.107 §7.4 gives them. At Ta = 0 this leaves the standard's default R ≈ 93.2.
 * - Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl) (G.107 §7.5), with the codec's Ie
 *   and Bpl from CODEC_IMPAIRMENT below, Ppl the loss in percent and BurstR 1 (random loss:
 *   the RFC 3550 counts do not describe bursts).
 * - R → MOS by G.107 Annex B: 1 below R = 0, 4.5 above R = 100, else
 *   1 + 0.035R + R(R − 60)(100 − R)·7·10⁻⁶.
 *
 * Pure: no clock, no I/O.
 */
import type { CodecName } from '../types.js';

/** G.107 defaults: the basic signal-to-noise ratio and the simultaneous impairment. */
export const RO = 94.77;
export const IS = 1.43;
/** Default talker echo loudness rating and weighted echo path loss, dB (G.107 Table 2). */
const TELR = 65;
const WEPL = 110;

/** Equipment impairment and packet-loss robustness of a codec on the narrowband E-model scale. */
export interface CodecImpairment {
  readonly ie: number;
  readonly bpl: number;
}

/**
 * Per codec, with the source of each value:
 * - G.711 (PCMU, PCMA): Ie 0; Bpl 25.1 with packet-loss concealment (G.711 Appendix I),
 *   4.3 without (ITU-T G.113 Appendix I, Table I.3). Endpoints today conceal loss, so the
 *   concealed figure is used; G711_NO_PLC is the other row, for reference.
 * - L16: uncompressed, Ie 0, treated as G.711 with concealment.
 * - G.722 and Opus: G.113 Appendix I gives narrowband values only. On the narrowband scale a
 *   wideband codec is credited no better than G.711 (Ie 0; the wideband E-model, G.107.1,
 *   would be needed for more), and both decoders conceal loss (G.722 Appendix III/IV, Opus's
 *   built-in concealment), so Bpl is that of G.711 with concealment. This is our assumption,
 *   not a value of the standard.
 * - (G.729A with VAD would be Ie 11, Bpl 19.0, G.113 Appendix I; it is not a codec we record.)
 */
export const G711_NO_PLC: CodecImpairment = { ie: 0, bpl: 4.3 };
const G711_PLC: CodecImpairment = { ie: 0, bpl: 25.1 };
export const CODEC_IMPAIRMENT: Readonly<Partial<Record<CodecName, CodecImpairment>>> = {
  PCMU: G711_PLC,
  PCMA: G711_PLC,
  L16: G711_PLC,
  G722: G711_PLC,
  OPUS: G711_PLC,
};

/**
 * The network's one-way delay when nothing measures it. The recorder sends no media, so no
 * RTCP receiver report gives it a round trip; 20 ms stands for a recorder near its SBC.
 */
export const DEFAULT_NETWORK_DELAY_MS = 20;
/** The packet duration assumed before a packet has been decoded. */
export const DEFAULT_PACKET_MS = 20;

/** Talker echo impairment (G.107 §7.4, Idte), echo path delay T in ms. */
export function talkerEchoImpairment(t: number): number {
  if (t <= 0) return 0;
  const terv = TELR - 40 * Math.log10((1 + t / 10) / (1 + t / 150)) + 6 * Math.exp(-0.3 * t * t);
  const roe = RO; // −1.5(No − 2) with the default No of −61.18 dBm0p
  const re = 80 + 2.5 * (terv - 14);
  const d = roe - re;
  return (d / 2 + Math.sqrt((d * d) / 4 + 100) - 1) * (1 - Math.exp(-t));
}

/** Listener echo impairment (G.107 §7.4, Idle), round-trip delay Tr in ms. */
export function listenerEchoImpairment(tr: number): number {
  const rle = 10.5 * (WEPL + 7) * Math.pow(tr + 1, -0.25);
  const d = RO - rle;
  return d / 2 + Math.sqrt((d * d) / 4 + 169);
}

/** Impairment of pure delay (G.107 §7.4, Idd, with mT 100 ms and sT 1), absolute delay Ta in ms. */
export function pureDelayImpairment(ta: number): number {
  if (ta <= 100) return 0;
  const x = Math.log2(ta / 100);
  return 25 * (Math.pow(1 + Math.pow(x, 6), 1 / 6) - 3 * Math.pow(1 + Math.pow(x / 3, 6), 1 / 6) + 2);
}

/** Id for a one-way delay Ta, with T = Ta and Tr = 2·Ta. */
export function delayImpairment(ta: number): number {
  return talkerEchoImpairment(ta) + listenerEchoImpairment(2 * ta) + pureDelayImpairment(ta);
}

/** Ie,eff for a loss of `lossPercent` (0..100). */
export function effectiveEquipmentImpairment(c: CodecImpairment, lossPercent: number, burstR = 1): number {
  const ppl = Math.max(0, Math.min(100, lossPercent));
  return c.ie + ((95 - c.ie) * ppl) / (ppl / burstR + c.bpl);
}

/** R → MOS (G.107 Annex B). */
export function mosFromR(r: number): number {
  if (r <= 0) return 1;
  if (r >= 100) return 4.5;
  return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6;
}

export interface DelayEstimate {
  /** The leg's interarrival jitter, ms. */
  readonly jitterMs: number;
  /** Audio per packet, ms (packetisation delay). */
  readonly packetMs: number;
  /** One-way network delay when measured; else DEFAULT_NETWORK_DELAY_MS. */
  readonly networkMs?: number;
}

/**
 * The one-way delay estimate: network + packetisation (one packet's audio) + a jitter buffer
 * that holds twice the interarrival jitter (the usual target of an adaptive buffer).
 */
export function oneWayDelayMs(d: DelayEstimate): number {
  return (d.networkMs ?? DEFAULT_NETWORK_DELAY_MS) + d.packetMs + 2 * d.jitterMs;
}

export interface LegQualityInput extends DelayEstimate {
  readonly codec: CodecName | 'none';
  readonly packets: number;
  readonly lost: number;
}

export interface QualityEstimate {
  readonly r: number;
  readonly mos: number;
  readonly delayMs: number;
}

/** R and MOS of one leg; undefined when the leg carried no audio to rate. */
export function estimateQuality(q: LegQualityInput): QualityEstimate | undefined {
  const c = q.codec === 'none' ? undefined : CODEC_IMPAIRMENT[q.codec];
  const expected = q.packets + q.lost;
  if (c === undefined || expected === 0) return undefined;
  const delayMs = oneWayDelayMs(q);
  const r = RO - IS - delayImpairment(delayMs) - effectiveEquipmentImpairment(c, (100 * q.lost) / expected);
  return { r, mos: mosFromR(r), delayMs };
}

/** The MOS as stored and shown: two decimals. */
export function roundMos(mos: number): number {
  return Math.round(mos * 100) / 100;
}
