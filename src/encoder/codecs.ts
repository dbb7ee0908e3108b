/**
 * Payload decoding for the codecs a leg may carry, and the rate conversion between a codec's
 * rate and the recording's output rate.
 *
 *   PCMU, PCMA      8 kHz, stateless tables
 *   G722           16 kHz out (RTP clock 8000), stateful ADPCM
 *   L16            big-endian 16-bit at the rtpmap rate; several channels are averaged
 *   OPUS           decoded by libopus straight at the output rate (RTP clock 48000)
 *
 * Comfort noise and telephone-events are never audio: `isAudioCodec` says which is which.
 */
import type { CodecName, MediaFormat } from '../types.js';
import { decodeG711 } from './g711.js';
import { G722Decoder } from './g722.js';
import { createOpusDecoder, type OpusDecoderHandle } from './opus-native.js';

/** RTP payload type 13 is comfort noise (RFC 3389) whatever the SDP says. */
export const PT_COMFORT_NOISE = 13;

export function isAudioCodec(codec: CodecName): boolean {
  return codec !== 'TELEPHONE-EVENT' && codec !== 'CN';
}

/** Rate a format decodes to, before any conversion. */
export function decodedRate(f: MediaFormat, outputRate: number): number {
  switch (f.codec) {
    case 'PCMU':
    case 'PCMA':
      return 8000;
    case 'G722':
      return 16000;
    case 'L16':
      return f.clockRate;
    case 'OPUS':
      return outputRate;
    default:
      return f.clockRate;
  }
}

/** True for formats that carry more than telephone band (so the recording runs at 16 kHz). */
export function isWideband(f: MediaFormat): boolean {
  if (!isAudioCodec(f.codec)) return false;
  if (f.codec === 'G722' || f.codec === 'OPUS') return true;
  if (f.codec === 'L16') return f.clockRate > 8000;
  return false;
}

/** 8000 when every audio format is narrowband, 16000 when any is wideband. */
export function chooseOutputRate(formats: Iterable<MediaFormat>): 8000 | 16000 {
  for (const f of formats) if (isWideband(f)) return 16000;
  return 8000;
}

/** Largest payload we decode; anything bigger is not a sane RTP audio packet. */
const MAX_PAYLOAD = 16 * 1024;

/** Decodes one RTP stream's payloads to mono PCM at `rate`. */
export interface PayloadDecoder {
  readonly codec: CodecName;
  readonly rate: number;
  /** Decoded samples of the payload; a view valid until the next call. Empty when unusable. */
  decode(payload: Buffer): Int16Array;
}

export function createPayloadDecoder(format: MediaFormat, outputRate: number): PayloadDecoder {
  const rate = decodedRate(format, outputRate);
  // Sized by the first packet (160 samples for 20 ms of G.711), grown only for a longer one.
  let scratch = new Int16Array(0);
  const room = (n: number): Int16Array => {
    if (scratch.length < n) scratch = new Int16Array(n);
    return scratch;
  };
  switch (format.codec) {
    case 'PCMU':
    case 'PCMA': {
      const law = format.codec;
      return {
        codec: law,
        rate,
        decode(payload) {
          if (payload.length > MAX_PAYLOAD) return scratch.subarray(0, 0);
          const out = room(payload.length);
          return out.subarray(0, decodeG711(law, payload, out));
        },
      };
    }
    case 'G722': {
      const g722 = new G722Decoder();
      return {
        codec: 'G722',
        rate,
        decode(payload) {
          if (payload.length > MAX_PAYLOAD) return scratch.subarray(0, 0);
          const out = room(payload.length * 2);
          return out.subarray(0, g722.decode(payload, out));
        },
      };
    }
    case 'L16': {
      const ch = Math.max(1, format.channels);
      return {
        codec: 'L16',
        rate,
        decode(payload) {
          if (payload.length > MAX_PAYLOAD) return scratch.subarray(0, 0);
          const frames = Math.floor(payload.length / (2 * ch));
          const out = room(frames);
          for (let i = 0; i < frames; i++) {
            let sum = 0;
            for (let c = 0; c < ch; c++) sum += payload.readInt16BE((i * ch + c) * 2);
            out[i] = Math.round(sum / ch);
          }
          return out.subarray(0, frames);
        },
      };
    }
    case 'OPUS': {
      const opus: OpusDecoderHandle = createOpusDecoder(rate, 1);
      return {
        codec: 'OPUS',
        rate,
        decode(payload) {
          if (payload.length === 0 || payload.length > MAX_PAYLOAD) return scratch.subarray(0, 0);
          // Room for the longest packet Opus has (120 ms), decoded straight into the scratch.
          const out = room((rate * 120) / 1000);
          let n: number;
          try {
            n = opus.decode(payload, out);
          } catch {
            // A corrupt packet is a gap, like a lost one.
            return scratch.subarray(0, 0);
          }
          return out.subarray(0, n);
        },
      };
    }
    default:
      throw new RangeError(`${format.codec} is not an audio codec`);
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Streaming band-limited rate conversion (windowed-sinc, polyphase). Output sample j sits
 * exactly at input time j × in/out, so output never drifts from the input's timeline; it is
 * produced once the input has run `halfWidth` samples past it, and flush() drains the rest
 * by assuming silence after the last input sample.
 */
export class StreamResampler {
  readonly inRate: number;
  readonly outRate: number;
  private readonly up: number;
  private readonly down: number;
  private readonly half: number;
  /** taps[phase * 2half + k] weighs input (base + k - half + 1) for output phase `phase`. */
  private readonly taps: Float32Array;
  private hist: Float32Array;
  /** Absolute input index of hist[0]; inputs before the first are zeros. */
  private histStart = 0;
  private histLen = 0;
  private inputCount = 0;
  private outIndex = 0;
  private out = new Int16Array(512);

  constructor(inRate: number, outRate: number) {
    const g = gcd(inRate, outRate);
    this.inRate = inRate;
    this.outRate = outRate;
    this.up = outRate / g;
    this.down = inRate / g;
    if (this.up > 4096) throw new RangeError(`unsupported rate pair ${inRate} -> ${outRate}`);
    // Cut off a little below the lower Nyquist so the transition band stays out of it.
    const fc = 0.92 * Math.min(1, outRate / inRate);
    this.half = Math.ceil(8 / fc);
    const width = 2 * this.half;
    this.taps = new Float32Array(this.up * width);
    for (let ph = 0; ph < this.up; ph++) {
      const frac = ph / this.up;
      let sum = 0;
      for (let k = 0; k < width; k++) {
        const x = k - this.half + 1 - frac;
        const w = 0.5 + 0.5 * Math.cos((Math.PI * x) / (this.half + 1));
        const s = x === 0 ? fc : Math.sin(Math.PI * fc * x) / (Math.PI * x);
        this.taps[ph * width + k] = s * w;
        sum += s * w;
      }
      // Unity gain at DC for every phase.
      for (let k = 0; k < width; k++) this.taps[ph * width + k]! /= sum;
    }
    // A packet's input and the filter's width; grown (append) for longer packets.
    this.hist = new Float32Array(1024);
  }

  reset(): void {
    this.histStart = 0;
    this.histLen = 0;
    this.inputCount = 0;
    this.outIndex = 0;
  }

  /** Output produced so far since the last reset. */
  get produced(): number {
    return this.outIndex;
  }

  /** Feeds input; returns the output that became ready (a view valid until the next call). */
  process(input: Int16Array): Int16Array {
    this.append(input, input.length);
    return this.drain(this.inputCount);
  }

  /** Returns the output still owed for the input given so far, then starts over. */
  flush(): Int16Array {
    const real = this.inputCount;
    this.append(null, this.half);
    const out = this.drain(real);
    this.reset();
    return out;
  }

  private append(input: Int16Array | null, n: number): void {
    if (this.histLen + n > this.hist.length) {
      const bigger = new Float32Array(Math.max(this.hist.length * 2, this.histLen + n));
      bigger.set(this.hist.subarray(0, this.histLen));
      this.hist = bigger;
    }
    if (input) for (let i = 0; i < n; i++) this.hist[this.histLen + i] = input[i]!;
    else this.hist.fill(0, this.histLen, this.histLen + n);
    this.histLen += n;
    // Count zeros fed by flush() as input too, so positions stay consistent inside drain().
    this.inputCount += n;
  }

  /** Produces every output whose time is before `limit` and whose window is available. */
  private drain(limit: number): Int16Array {
    const width = 2 * this.half;
    let count = 0;
    for (;;) {
      const num = this.outIndex * this.down;
      const base = Math.floor(num / this.up);
      // Past the real input, or the window (base - half + 1 .. base + half) not yet complete.
      if (base >= limit || base + this.half >= this.inputCount) break;
      const ph = num - base * this.up;
      const t = ph * width;
      let acc = 0;
      const first = base - this.half + 1 - this.histStart;
      for (let k = 0; k < width; k++) {
        const idx = first + k;
        if (idx >= 0) acc += this.hist[idx]! * this.taps[t + k]!;
      }
      if (count >= this.out.length) {
        const bigger = new Int16Array(this.out.length * 2);
        bigger.set(this.out);
        this.out = bigger;
      }
      this.out[count++] = acc > 32767 ? 32767 : acc < -32768 ? -32768 : Math.round(acc);
      this.outIndex++;
    }
    // Keep only the history the next output still needs.
    const nextBase = Math.floor((this.outIndex * this.down) / this.up);
    const keepFrom = nextBase - this.half + 1 - this.histStart;
    if (keepFrom > 0) {
      const k = Math.min(keepFrom, this.histLen);
      this.hist.copyWithin(0, k, this.histLen);
      this.histLen -= k;
      this.histStart += k;
    }
    return this.out.subarray(0, count);
  }
}
