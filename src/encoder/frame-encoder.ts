/**
 * The call's 20 ms stereo frames → Opus → Ogg. Each frame is split into the two legs'
 * channels, each channel is encoded as its own mono Opus stream, and the two packets go into
 * one multistream Ogg packet (customer left, agent right; RFC 7845 mapping family 1).
 *
 * Two mono streams instead of one stereo stream: libopus costs the same for both when both
 * legs speak, but a silent leg can then be skipped on its own, and in a call one side mostly
 * listens; the sides also cannot leak into each other through joint coding.
 */
import { OPUS_MAX_PACKET, type OpusEncoderHandle } from './opus-native.js';
import type { OggOpusWriter } from './ogg.js';
import { isGated, SilenceGate } from './silence-gate.js';
import { Stage, stageBegin, stageEnd } from '../stage-clock.js';

/** Samples at 48 kHz in one 20 ms frame: what each Ogg packet decodes to. */
export const SAMPLES_48K_PER_FRAME = 960;
/** Silent frames run through the encoder before its silence packet is taken as settled. */
const SILENCE_SETTLE_FRAMES = 3;

/**
 * Where libopus writes the packets: one buffer per channel for the whole thread. A frame's two
 * packets are both copied into the Ogg page before the next frame of any call is encoded, so
 * no encoder needs room of its own.
 */
const PACKET_ROOM = ((room: Buffer): [Buffer, Buffer] => [room.subarray(0, OPUS_MAX_PACKET), room.subarray(OPUS_MAX_PACKET)])(
  Buffer.allocUnsafeSlow(2 * OPUS_MAX_PACKET),
);
/** Digital silence, enough for a 20 ms frame at 48 kHz: what a gated frame is encoded as. */
const ZEROS = Buffer.alloc(SAMPLES_48K_PER_FRAME * 2);

/**
 * One leg's mono Opus stream. A gated frame is fed as digital silence; once the encoder's
 * packet for silence has settled (the same packet SILENCE_SETTLE_FRAMES times running), that
 * packet is reused instead of running the encoder. The decoder then is exactly where the
 * encoder is, so speech after the silence starts without a click.
 *
 * The packet returned is a view of the thread's room for this channel, valid until the
 * channel's next frame; the last silent packet is kept as a copy of the leg's own (a few
 * bytes), and the settled packet is that copy.
 */
class ChannelEncoder {
  framesEncoded = 0;
  framesSkipped = 0;
  readonly gate = new SilenceGate();
  private settled: Buffer | null = null;
  /** The last silent packet, in `silent[0, silentLength)`; silentLength -1 when there is none. */
  private silent: Buffer | null = null;
  private silentLength = -1;
  private silentRun = 0;
  private readonly zeros: Buffer;
  private readonly room: Buffer;

  constructor(
    private readonly encoder: OpusEncoderHandle,
    frameSamples: number,
    channel: 0 | 1,
  ) {
    this.zeros = ZEROS.subarray(0, frameSamples * 2);
    this.room = PACKET_ROOM[channel];
  }

  /** `pcm`: the frame's samples as bytes (a view the caller keeps: no Buffer per frame). */
  encode(pcm: Buffer, gated: boolean): Buffer {
    if (!gated) {
      this.settled = null;
      this.silentLength = -1;
      this.silentRun = 0;
      return this.run(pcm);
    }
    if (this.settled) {
      this.framesSkipped++;
      return this.settled;
    }
    const packet = this.run(this.zeros);
    this.silentRun++;
    const same = this.silentLength === packet.length && this.silent!.compare(packet, 0, packet.length, 0, packet.length) === 0;
    if (same && this.silentRun >= SILENCE_SETTLE_FRAMES) {
      this.settled = this.silent!.subarray(0, this.silentLength);
    } else if (!same) {
      // Its own memory (never a slice of Node's shared pool, which a kept slice would pin).
      if (!this.silent || this.silent.length < packet.length) this.silent = Buffer.allocUnsafeSlow(Math.max(32, packet.length));
      packet.copy(this.silent);
      this.silentLength = packet.length;
    }
    return packet;
  }

  private run(pcm: Buffer): Buffer {
    this.framesEncoded++;
    const t = stageBegin(Stage.libopus);
    const length = this.encoder.encodeInto(pcm, this.room);
    stageEnd(Stage.libopus, t);
    return this.room.subarray(0, length);
  }
}

/**
 * Takes the timeline's stereo frames and writes one multistream Ogg packet per frame. Each
 * frame is held back one frame, so that each leg's silence gate can look ahead.
 */
export class FrameEncoder {
  private readonly channels: [ChannelEncoder, ChannelEncoder];
  private readonly pending: [Int16Array, Int16Array];
  /** The pending frames' bytes, made once: libopus reads them from there. */
  private readonly pendingBytes: [Buffer, Buffer];
  private readonly current: [Int16Array, Int16Array];
  private hasPending = false;
  private readonly pendingRun: [number, number] = [0, 0];
  /** The two legs' packets of the frame being written (reused). */
  private readonly pair: Buffer[] = [];

  constructor(
    encoders: [OpusEncoderHandle, OpusEncoderHandle],
    private readonly ogg: OggOpusWriter,
    private readonly skipSilence: boolean,
    frameSamples: number,
  ) {
    this.channels = [new ChannelEncoder(encoders[0], frameSamples, 0), new ChannelEncoder(encoders[1], frameSamples, 1)];
    this.pending = [new Int16Array(frameSamples), new Int16Array(frameSamples)];
    this.pendingBytes = [Buffer.from(this.pending[0].buffer), Buffer.from(this.pending[1].buffer)];
    this.current = [new Int16Array(frameSamples), new Int16Array(frameSamples)];
  }

  get framesEncoded(): number {
    return this.channels[0].framesEncoded + this.channels[1].framesEncoded;
  }

  get framesSkipped(): number {
    return this.channels[0].framesSkipped + this.channels[1].framesSkipped;
  }

  /** One interleaved stereo frame (read at once: the caller may reuse it). */
  push(frame: Int16Array): void {
    const [l, r] = this.current;
    for (let i = 0, j = 0; i < l.length; i++, j += 2) {
      l[i] = frame[j]!;
      r[i] = frame[j + 1]!;
    }
    const ts = stageBegin(Stage.silence);
    const q0 = this.channels[0].gate.observe(l);
    const q1 = this.channels[1].gate.observe(r);
    stageEnd(Stage.silence, ts);
    if (this.hasPending) this.emit(q0, q1);
    this.pending[0].set(l);
    this.pending[1].set(r);
    this.pendingRun[0] = this.channels[0].gate.run;
    this.pendingRun[1] = this.channels[1].gate.run;
    this.hasPending = true;
  }

  /** Encodes the frame held back; at the end there is no next frame, so it counts as sound. */
  finish(): void {
    if (this.hasPending) this.emit(false, false);
    this.hasPending = false;
  }

  private emit(nextQuiet0: boolean, nextQuiet1: boolean): void {
    const a = this.channels[0].encode(this.pendingBytes[0], this.skipSilence && isGated(this.pendingRun[0], nextQuiet0));
    const b = this.channels[1].encode(this.pendingBytes[1], this.skipSilence && isGated(this.pendingRun[1], nextQuiet1));
    const t = stageBegin(Stage.ogg);
    const pair = this.pair;
    pair[0] = a;
    pair[1] = b;
    this.ogg.writeMultistreamPacket(pair, SAMPLES_48K_PER_FRAME);
    stageEnd(Stage.ogg, t);
  }
}
