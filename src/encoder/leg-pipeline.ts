/**
 * One leg's way from spooled RTP packets to timeline samples, and what it learns on the way:
 * the leg's reception statistics (counted by the same LegReception as at capture), where each
 * packet belongs on the timeline (LegPlacer), the decoded and rate-converted audio, and its
 * DTMF digits.
 *
 * Audio at the output rate goes straight onto the timeline. Audio at another rate runs
 * through one StreamResampler per talk spurt: consecutive packets of one source feed it as a
 * stream, so no edge is filtered at every packet boundary; a gap, a re-anchor or a source
 * change ends the spurt and its last samples are flushed out.
 */
import type { CodecName, LegDescriptor, LegStats, MediaFormat } from '../types.js';
import type { RtpHeader } from '../rtp/packet.js';
import { jitterClockRate, LegReception } from '../rtp/stats.js';
import { createPayloadDecoder, isAudioCodec, PT_COMFORT_NOISE, StreamResampler, type PayloadDecoder } from './codecs.js';
import type { CallTimeline } from './timeline.js';
import { LegPlacer } from './timeline.js';
import { DtmfCollector } from './dtmf.js';
import { DEFAULT_PACKET_MS, estimateQuality, roundMos } from '../quality/emodel.js';
import { Stage, stageBegin, stageEnd } from '../stage-clock.js';

/** RTP payload types are 7 bits. */
const PAYLOAD_TYPES = 128;

function audioFormatOf(formats: readonly MediaFormat[]): MediaFormat | undefined {
  return formats.find((f) => isAudioCodec(f.codec));
}

export class LegPipeline {
  readonly index: number;
  descriptor: LegDescriptor;
  readonly placer: LegPlacer;
  readonly reception = new LegReception();
  readonly dtmf: DtmfCollector;
  /** The leg's formats by payload type (a few entries, not a 128-slot table per leg). */
  private formats = new Map<number, MediaFormat>();
  private decoder: PayloadDecoder | null = null;
  private decoderPt = -1;
  private decoderSsrc = -1;
  private resampler: StreamResampler | null = null;
  private spurtPos = 0;
  private spurtSsrc = -1;
  private expectExtTs = NaN;
  /** Arrival (epoch ms) of the leg's last packet. */
  lastArrival = -Infinity;
  private codecSeen: CodecName | null = null;
  /** Audio in the leg's last decoded packet, ms (its packetisation delay). */
  private packetMs = DEFAULT_PACKET_MS;

  constructor(
    descriptor: LegDescriptor,
    private readonly timeline: CallTimeline,
    private readonly outRate: number,
    answeredAt: number,
    maskDtmf: boolean,
  ) {
    this.index = descriptor.index;
    this.descriptor = descriptor;
    this.placer = new LegPlacer(outRate, answeredAt);
    this.dtmf = new DtmfCollector(descriptor.index, outRate, maskDtmf);
    this.setDescriptor(descriptor);
  }

  /** The leg's formats changed (a later META record: a re-INVITE). */
  setDescriptor(d: LegDescriptor): void {
    this.descriptor = d;
    const table = new Map<number, MediaFormat>();
    for (const f of d.formats) if (f.pt >= 0 && f.pt < PAYLOAD_TYPES) table.set(f.pt, f);
    this.formats = table;
    const audio = audioFormatOf(d.formats);
    if (audio) this.placer.setClockRate(audio.clockRate);
  }

  /** A talk spurt of a resampled leg is open. */
  get spurtOpen(): boolean {
    return this.resampler !== null && this.spurtSsrc !== -1;
  }

  /** One spooled RTP packet, its parsed header and its arrival time (epoch ms). */
  onRtp(packet: Buffer, h: RtpHeader, arrival: number): void {
    const pt = h.payloadType;
    const format = this.formats.get(pt);
    this.lastArrival = arrival;
    const verdict = this.reception.update(h.ssrc, h.sequence, h.timestamp, arrival, format ? jitterClockRate(format) : 0);
    if (verdict === 'duplicate') return;
    if (pt === PT_COMFORT_NOISE || !format || format.codec === 'CN') {
      // Comfort noise (and unknown payload types) keep timing and statistics but are silence.
      this.placer.place(h.ssrc, h.timestamp, arrival);
      this.flushSpurt();
      return;
    }
    const payload = packet.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength);
    if (format.codec === 'TELEPHONE-EVENT') {
      const placed = this.placer.place(h.ssrc, h.timestamp, arrival, false);
      this.dtmf.onPacket(payload, h.ssrc, placed.extTs, placed.pos, format.clockRate);
      return;
    }
    const placed = this.placer.place(h.ssrc, h.timestamp, arrival);
    if (!this.decoder || this.decoderPt !== pt || this.decoderSsrc !== h.ssrc) {
      this.flushSpurt();
      this.decoder = createPayloadDecoder(format, this.outRate);
      this.decoderPt = pt;
      this.decoderSsrc = h.ssrc;
    }
    this.codecSeen = format.codec;
    const td = stageBegin(Stage.decode);
    const pcm = this.decoder.decode(payload);
    stageEnd(Stage.decode, td);
    if (pcm.length === 0) return;
    const rate = this.decoder.rate;
    this.packetMs = (pcm.length * 1000) / rate;
    if (rate === this.outRate) {
      this.timeline.write(this.index, placed.pos, pcm);
      return;
    }
    const contiguous = this.resampler !== null && this.resampler.inRate === rate && this.spurtSsrc === h.ssrc && !placed.anchored && placed.extTs === this.expectExtTs;
    if (!contiguous) {
      this.flushSpurt();
      if (!this.resampler || this.resampler.inRate !== rate) this.resampler = new StreamResampler(rate, this.outRate);
      this.spurtPos = placed.pos;
      this.spurtSsrc = h.ssrc;
    }
    const r = this.resampler!;
    const out = r.process(pcm);
    this.timeline.write(this.index, this.spurtPos + r.produced - out.length, out);
    this.expectExtTs = placed.extTs + Math.round((pcm.length * format.clockRate) / rate);
  }

  /** Ends the current talk spurt of a resampled leg: its last samples go out. */
  flushSpurt(): void {
    const r = this.resampler;
    if (!r || this.spurtSsrc === -1) return;
    const at = this.spurtPos + r.produced;
    const out = r.flush();
    this.timeline.write(this.index, at, out);
    this.spurtSsrc = -1;
    this.expectExtTs = NaN;
  }

  /** The end of the call: the last spurt and the last event are closed. */
  finish(): void {
    this.flushSpurt();
    this.dtmf.finish();
  }

  /** The leg's figures as the register stores them. */
  stats(): LegStats {
    const r = this.reception;
    const codec = this.codecSeen ?? audioFormatOf(this.descriptor.formats)?.codec ?? 'none';
    const quality = estimateQuality({ codec, packets: r.packets, lost: r.lost, jitterMs: r.meanJitterMs, packetMs: this.packetMs });
    return {
      index: this.index,
      ...(this.descriptor.label !== undefined ? { label: this.descriptor.label } : {}),
      role: this.descriptor.role,
      codec,
      packets: r.packets,
      lost: r.lost,
      ssrcs: r.ssrcs,
      jitterMs: Math.round(r.meanJitterMs * 100) / 100,
      ...(quality ? { mos: roundMos(quality.mos) } : {}),
    };
  }
}
