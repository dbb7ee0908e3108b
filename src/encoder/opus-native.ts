/**
 * The one module that loads libopus. Everything else sees the two small interfaces below.
 *
 * libopus comes from our own addon (native/opus-codec, built by `npm ci`), which encodes into
 * a buffer the caller made once and keeps nothing beside libopus' own state. Where the addon
 * is not built, the @discordjs/opus binding (the same libopus 1.3.1 sources, bit for bit the
 * same packets) stands in; it adds a 15 KB scratch area to every encoder and a new Buffer to
 * every packet. `opusBinding()` says which one runs and why.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// libopus request codes (opus_defines.h).
const OPUS_SET_APPLICATION_REQUEST = 4000;
const OPUS_SET_BITRATE_REQUEST = 4002;
const OPUS_SET_COMPLEXITY_REQUEST = 4010;
const OPUS_SET_SIGNAL_REQUEST = 4024;
const OPUS_SET_FORCE_CHANNELS_REQUEST = 4022;
const OPUS_APPLICATION_VOIP = 2048;
const OPUS_SIGNAL_VOICE = 3001;

/**
 * Samples at 48 kHz the encoder delays its output by, for the VOIP/AUDIO applications:
 * 2.5 ms of look-ahead plus 4 ms of delay compensation (OPUS_GET_LOOKAHEAD, scaled to 48 kHz;
 * a unit test checks the value against libopus at every rate).
 */
export const OPUS_PRE_SKIP_48K = 312;

/**
 * The largest packet of one 20 ms frame: the TOC byte and at most 1,275 bytes of frame (RFC
 * 6716, 3.2.1). libopus fits its packet into the room it is given, so this never refuses one.
 */
export const OPUS_MAX_PACKET = 1276;

export type OpusRate = 8000 | 12000 | 16000 | 24000 | 48000;

export interface OpusEncoderHandle {
  /**
   * One frame of Int16 interleaved PCM (20 ms = rate / 50 samples per channel) → the packet,
   * written at the start of `out`; returns its length. `out` should hold OPUS_MAX_PACKET.
   */
  encodeInto(pcm: Int16Array | Buffer, out: Uint8Array): number;
  /** The same, into a Buffer of its own (for callers that keep every packet). */
  encode(pcm: Int16Array | Buffer): Buffer;
  /** OPUS_GET_LOOKAHEAD: samples at the encoder's rate (null where the binding cannot ask). */
  lookahead(): number | null;
}

export interface OpusDecoderHandle {
  /** One Opus packet → Int16 interleaved PCM written into `out`; returns samples per channel. Throws on a corrupt packet. */
  decode(packet: Uint8Array, out: Int16Array): number;
}

export type OpusBindingName = 'tallenne' | '@discordjs/opus';

interface OpusBinding {
  readonly name: OpusBindingName;
  createEncoder(rate: number, channels: number, application: number): unknown;
  encoderSet(enc: unknown, request: number, value: number): void;
  encoderLookahead(enc: unknown): number | null;
  encodeInto(enc: unknown, pcm: Int16Array | Buffer, out: Uint8Array): number;
  createDecoder(rate: number, channels: number): unknown;
  decode(dec: unknown, packet: Uint8Array, out: Int16Array): number;
}

/** native/opus-codec/build/Release/opus_codec.node, as opus_codec.c exports it. */
interface NativeCodec {
  version: string;
  createEncoder(rate: number, channels: number, application: number): object;
  encoderSet(enc: object, request: number, value: number): void;
  encoderLookahead(enc: object): number;
  encode(enc: object, pcm: Int16Array | Buffer, out: Uint8Array): number;
  createDecoder(rate: number, channels: number): object;
  decode(dec: object, packet: Uint8Array, out: Int16Array): number;
}

interface PackageCodec {
  encode(buf: Buffer): Buffer;
  decode(buf: Buffer): Buffer;
  applyEncoderCTL(ctl: number, value: number): void;
  setBitrate(bitrate: number): void;
}
type PackageCodecCtor = new (rate: number, channels: number) => PackageCodec;

const require = createRequire(import.meta.url);
const ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'opus-codec', 'build', 'Release', 'opus_codec.node');

function bytesOf(pcm: Int16Array | Buffer): Buffer {
  return Buffer.isBuffer(pcm) ? pcm : Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
}

function addonBinding(native: NativeCodec): OpusBinding {
  return {
    name: 'tallenne',
    createEncoder: (rate, channels, application) => native.createEncoder(rate, channels, application),
    encoderSet: (enc, request, value) => native.encoderSet(enc as object, request, value),
    encoderLookahead: (enc) => native.encoderLookahead(enc as object),
    encodeInto: (enc, pcm, out) => native.encode(enc as object, pcm, out),
    createDecoder: (rate, channels) => native.createDecoder(rate, channels),
    decode: (dec, packet, out) => native.decode(dec as object, packet, out),
  };
}

function packageBinding(): OpusBinding {
  const { OpusEncoder: Ctor } = require('@discordjs/opus') as { OpusEncoder: PackageCodecCtor };
  return {
    name: '@discordjs/opus',
    createEncoder(rate, channels, application) {
      const enc = new Ctor(rate, channels);
      enc.applyEncoderCTL(OPUS_SET_APPLICATION_REQUEST, application);
      return enc;
    },
    encoderSet(enc, request, value) {
      // The package sets the bitrate through its own method; the rest are plain CTLs.
      if (request === OPUS_SET_BITRATE_REQUEST) (enc as PackageCodec).setBitrate(value);
      else (enc as PackageCodec).applyEncoderCTL(request, value);
    },
    // The package passes only integer arguments, so it cannot ask for the look-ahead.
    encoderLookahead: () => null,
    encodeInto(enc, pcm, out) {
      const packet = (enc as PackageCodec).encode(bytesOf(pcm));
      if (packet.length > out.length) throw new RangeError(`Opus packet of ${packet.length} bytes does not fit ${out.length}`);
      out.set(packet);
      return packet.length;
    },
    createDecoder: (rate, channels) => ({ codec: new Ctor(rate, channels), channels }),
    decode(dec, packet, out) {
      const { codec, channels } = dec as { codec: PackageCodec; channels: number };
      const pcm = codec.decode(Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength));
      const n = Math.min(out.length, pcm.length >> 1);
      for (let i = 0; i < n; i++) out[i] = pcm.readInt16LE(i * 2);
      return Math.floor(n / channels);
    },
  };
}

let addon: NativeCodec | string | undefined;
let chosen: OpusBinding | undefined;

/** The addon, or why it is not there (loaded once per thread). */
function loadAddon(): NativeCodec | string {
  if (addon !== undefined) return addon;
  if (!existsSync(ADDON_PATH)) return (addon = `the native addon is not built (${ADDON_PATH}); npm ci builds it`);
  try {
    return (addon = require(ADDON_PATH) as NativeCodec);
  } catch (err) {
    return (addon = `the native addon did not load: ${(err as Error).message}`);
  }
}

function binding(): OpusBinding {
  if (chosen) return chosen;
  const native = loadAddon();
  return (chosen = typeof native === 'string' ? packageBinding() : addonBinding(native));
}

/** Which libopus binding the encoders use, and why it is the stand-in when it is (loads nothing else). */
export function opusBinding(): { name: OpusBindingName; fallbackReason: string | null } {
  const native = loadAddon();
  return typeof native === 'string' ? { name: '@discordjs/opus', fallbackReason: native } : { name: 'tallenne', fallbackReason: null };
}

/** One binding by name, for the tests and the bench that compare the two (throws when it does not load). */
export function opusBindingNamed(name: OpusBindingName): OpusBinding {
  if (name === '@discordjs/opus') return packageBinding();
  const native = loadAddon();
  if (typeof native === 'string') throw new Error(native);
  return addonBinding(native);
}

export function createOpusEncoder(
  opts: { sampleRate: OpusRate; channels: 1 | 2; bitrate: number; complexity: number },
  using: OpusBinding = binding(),
): OpusEncoderHandle {
  // VOIP tunes the encoder for speech; it is set at creation, before the first frame.
  const enc = using.createEncoder(opts.sampleRate, opts.channels, OPUS_APPLICATION_VOIP);
  using.encoderSet(enc, OPUS_SET_SIGNAL_REQUEST, OPUS_SIGNAL_VOICE);
  // Below about 24 kbit/s libopus otherwise folds a stereo input to mono, which would put the
  // customer and the agent on both channels; a recorder needs the sides kept apart.
  if (opts.channels === 2) using.encoderSet(enc, OPUS_SET_FORCE_CHANNELS_REQUEST, 2);
  using.encoderSet(enc, OPUS_SET_COMPLEXITY_REQUEST, Math.max(0, Math.min(10, Math.round(opts.complexity))));
  using.encoderSet(enc, OPUS_SET_BITRATE_REQUEST, opts.bitrate);
  const frameBytes = (opts.sampleRate / 50) * opts.channels * 2;
  const check = (pcm: Int16Array | Buffer): void => {
    // libopus would take other frame sizes (2.5–60 ms); the pipeline only ever means 20 ms.
    if (pcm.byteLength !== frameBytes) throw new RangeError(`Opus frame must be ${frameBytes} bytes, got ${pcm.byteLength}`);
  };
  return {
    encodeInto(pcm, out) {
      check(pcm);
      return using.encodeInto(enc, pcm, out);
    },
    encode(pcm) {
      check(pcm);
      const out = Buffer.allocUnsafe(OPUS_MAX_PACKET);
      return Buffer.from(out.subarray(0, using.encodeInto(enc, pcm, out)));
    },
    lookahead: () => using.encoderLookahead(enc),
  };
}

export function createOpusDecoder(sampleRate: number, channels: 1 | 2, using: OpusBinding = binding()): OpusDecoderHandle {
  const dec = using.createDecoder(sampleRate, channels);
  return { decode: (packet, out) => using.decode(dec, packet, out) };
}
