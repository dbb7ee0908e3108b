/**
 * G.711 decoding (ITU-T G.711): µ-law (PCMU) and A-law (PCMA), 8 kHz, one byte per sample.
 * Both laws are expanded once into 256-entry tables at load, so decoding a packet is one
 * table look-up per byte.
 */

/** µ-law: the byte is stored inverted; sign in bit 7, 3-bit segment, 4-bit mantissa, bias 0x84. */
function expandUlaw(code: number): number {
  const u = ~code & 0xff;
  const segment = (u >> 4) & 0x07;
  const magnitude = (((u & 0x0f) << 3) + 0x84) << segment;
  return u & 0x80 ? 0x84 - magnitude : magnitude - 0x84;
}

/** A-law: even bits are toggled on the wire (0x55); segment 0 has no implicit leading one. */
function expandAlaw(code: number): number {
  const a = code ^ 0x55;
  const segment = (a >> 4) & 0x07;
  let magnitude = (a & 0x0f) << 4;
  if (segment === 0) magnitude += 8;
  else magnitude = (magnitude + 0x108) << (segment - 1);
  return a & 0x80 ? magnitude : -magnitude;
}

export const ULAW_TABLE: Int16Array = Int16Array.from({ length: 256 }, (_, i) => expandUlaw(i));
export const ALAW_TABLE: Int16Array = Int16Array.from({ length: 256 }, (_, i) => expandAlaw(i));

/** Decodes `payload` into `out` starting at `offset`; returns the number of samples. */
export function decodeG711(law: 'PCMU' | 'PCMA', payload: Uint8Array, out: Int16Array, offset = 0): number {
  const table = law === 'PCMU' ? ULAW_TABLE : ALAW_TABLE;
  const n = Math.min(payload.length, out.length - offset);
  for (let i = 0; i < n; i++) out[offset + i] = table[payload[i]!]!;
  return n;
}

/**
 * G.711 encoders (the inverse of the decoder tables). The recorder only decodes; these make
 * payloads for the load generator of the benchmark and for tests.
 */
export function linearToUlaw(sample: number): number {
  const BIAS = 0x84;
  let s = Math.max(-32635, Math.min(32635, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let seg = 7;
  for (let mask = 0x4000; (s & mask) === 0 && seg > 0; mask >>= 1) seg--;
  const mant = (s >> (seg + 3)) & 0x0f;
  return ~(sign | (seg << 4) | mant) & 0xff;
}

export function linearToAlaw(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample))) >> 3;
  let mask: number;
  if (s >= 0) mask = 0xd5;
  else {
    mask = 0x55;
    s = -s - 1;
  }
  const ends = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
  let seg = 0;
  while (seg < 8 && s > ends[seg]!) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  let a = seg << 4;
  a |= seg < 2 ? (s >> 1) & 0x0f : (s >> seg) & 0x0f;
  return a ^ mask;
}
