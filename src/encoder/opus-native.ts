/**
 * The one module that loads the libopus binding (@discordjs/opus). Everything else sees the
 * two small interfaces below, so the binding can be swapped without touching the pipeline.
 */
import { createRequire } from 'node:module';

interface NativeOpus {
  encode(buf: Buffer): Buffer;
  decode(buf: Buffer): Buffer;
  applyEncoderCTL(ctl: number, value: number): void;
  setBitrate(bitrate: number): void;
}
type NativeOpusCtor = new (rate: number, channels: number) => NativeOpus;

const require = createRequire(import.meta.url);
const { OpusEncoder: NativeOpusEncoder } = require('@discordjs/opus') as { OpusEncoder: NativeOpusCtor };

// libopus request codes (opus_defines.h).
const OPUS_SET_APPLICATION_REQUEST = 4000;
const OPUS_SET_COMPLEXITY_REQUEST = 4010;
const OPUS_SET_SIGNAL_REQUEST = 4024;
const OPUS_SET_FORCE_CHANNELS_REQUEST = 4022;
const OPUS_APPLICATION_VOIP = 2048;
const OPUS_SIGNAL_VOICE = 3001;

/**
 * Samples at 48 kHz the encoder delays its output by, for the VOIP/AUDIO applications:
 * 2.5 ms of look-ahead plus 4 ms of delay compensation. The binding cannot query
 * OPUS_GET_LOOKAHEAD (it only passes integer arguments), so the value is fixed here; the
 * end-to-end test checks the alignment by decoding.
 */
export const OPUS_PRE_SKIP_48K = 312;

export type OpusRate = 8000 | 12000 | 16000 | 24000 | 48000;

export interface OpusEncoderHandle {
  /** One frame of Int16LE interleaved PCM (20 ms = rate / 50 samples per channel). */
  encode(pcm: Buffer): Buffer;
}

export interface OpusDecoderHandle {
  /** One Opus packet to Int16LE interleaved PCM at the decoder's rate. */
  decode(packet: Buffer): Buffer;
}

export function createOpusEncoder(opts: { sampleRate: OpusRate; channels: 1 | 2; bitrate: number; complexity: number }): OpusEncoderHandle {
  const enc = new NativeOpusEncoder(opts.sampleRate, opts.channels);
  // The application must be set before the first frame; VOIP tunes the encoder for speech.
  enc.applyEncoderCTL(OPUS_SET_APPLICATION_REQUEST, OPUS_APPLICATION_VOIP);
  enc.applyEncoderCTL(OPUS_SET_SIGNAL_REQUEST, OPUS_SIGNAL_VOICE);
  // Below about 24 kbit/s libopus otherwise folds a stereo input to mono, which would put the
  // customer and the agent on both channels; a recorder needs the sides kept apart.
  if (opts.channels === 2) enc.applyEncoderCTL(OPUS_SET_FORCE_CHANNELS_REQUEST, 2);
  enc.applyEncoderCTL(OPUS_SET_COMPLEXITY_REQUEST, Math.max(0, Math.min(10, Math.round(opts.complexity))));
  enc.setBitrate(opts.bitrate);
  const frameBytes = (opts.sampleRate / 50) * opts.channels * 2;
  return {
    encode(pcm: Buffer): Buffer {
      // The binding derives the frame size from the buffer length; a wrong length would
      // make libopus fail in a way the binding does not report, so check it here.
      if (pcm.length !== frameBytes) throw new RangeError(`Opus frame must be ${frameBytes} bytes, got ${pcm.length}`);
      return enc.encode(pcm);
    },
  };
}

export function createOpusDecoder(sampleRate: number, channels: 1 | 2): OpusDecoderHandle {
  const dec = new NativeOpusEncoder(sampleRate, channels);
  return { decode: (packet: Buffer): Buffer => dec.decode(packet) };
}
