/**
 * Prometheus metrics: one registry. Call outcomes come from the call manager's and the
 * finaliser's events; hot-path figures (RTP packets, SIP counts, queue lengths) are read
 * from the components' plain counters when Prometheus scrapes, so nothing is counted twice
 * and nothing per packet touches prom-client. No label carries a number, a name or a call id.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { RtpCounters } from '../rtp/counters.js';
import type { EncodeResult } from '../encoder/encode-spool.js';
import type { RecordingEntry } from '../types.js';
import type { AudioStore } from '../storage/audio-store.js';
import { stageTotals } from '../stage-clock.js';

/**
 * What the metrics read, as small structural interfaces: the components satisfy them
 * without this module knowing their classes (nothing here imports the SIP layer).
 */
export interface SipFigures {
  readonly counters: {
    readonly requests: Readonly<Record<string, number>>;
    readonly responses: Readonly<Record<string, number>>;
    readonly malformed: number;
    readonly refused: Readonly<Record<string, number>>;
    readonly connectionsClosed: Readonly<Record<string, number>>;
  };
  readonly dialogCount: number;
}

/** A refusal as the call manager reports it. */
export interface RejectionFigure {
  readonly reason: string;
}

export interface CallFigures {
  readonly activeCalls: number;
  /** null while new calls are taken (OPTIONS answers 200), else the refusal a new call would get. */
  availability(): { readonly status: number } | null;
  on(event: 'rejected' | 'updateRejected', listener: (r: RejectionFigure) => void): unknown;
  on(event: 'probed', listener: (result: string) => void): unknown;
}

export interface FinalisationFigures {
  readonly pending: number;
  on(event: 'recorded', listener: (entry: RecordingEntry, result: EncodeResult, finaliseMs: number | null) => void): unknown;
  on(event: 'staged', listener: (id: string, outcome: 'reused' | 'reencoded') => void): unknown;
  on(event: 'failed', listener: (id: string, err: Error) => void): unknown;
}

export interface MetricSources {
  readonly calls: CallFigures;
  readonly finaliser: FinalisationFigures;
  readonly sip: SipFigures;
  readonly rtp: RtpCounters;
  readonly encoder: { readonly queueLength: number; readonly busy: number; readonly liveCalls: readonly number[]; readonly maxLagMs: number };
  readonly index: { count(): Promise<number> };
  readonly store: Pick<AudioStore, 'usage' | 'decryptFailures'>;
  readonly ports: { readonly inUse: number; readonly total: number; readonly batched: boolean; readonly batchesRead: number };
  readonly purger: { readonly runs: number; readonly purgedTotal: { readonly audio: number; readonly metadata: number }; readonly leasesRemoved: number };
  /** The upload outbox of a remote audio store; null when the audio is stored locally. */
  readonly outbox: { readonly waiting: number; readonly failures: number } | null;
  /** This build and recorder: the labels of tallenne_build_info. */
  readonly build: { readonly version: string; readonly node: string };
}

/**
 * Moves a counter up to a running total kept by a component (components count in plain
 * numbers; counters only go up, so the difference since the last scrape is added).
 */
const mirrored = new WeakMap<object, Map<string, number>>();
function mirror(counter: Counter<string>, labels: Record<string, string>, total: number): void {
  let seen = mirrored.get(counter);
  if (!seen) mirrored.set(counter, (seen = new Map()));
  const key = JSON.stringify(labels);
  const delta = total - (seen.get(key) ?? 0);
  if (delta > 0) {
    counter.inc(labels, delta);
    seen.set(key, total);
  } else if (!seen.has(key)) {
    counter.inc(labels, 0);
    seen.set(key, total);
  }
}

export class Metrics {
  readonly registry = new Registry();

  constructor(s: MetricSources) {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    const src = s;

    new Gauge({ name: 'tallenne_build_info', help: 'Always 1; the labels name the version and the recorder ([cluster] node_id).', labelNames: ['version', 'node'], registers: [r] })
      .set({ version: s.build.version, node: s.build.node }, 1);
    new Gauge({ name: 'tallenne_active_calls', help: 'Calls being recorded now.', registers: [r], collect() { this.set(src.calls.activeCalls); } });
    new Gauge({
      name: 'tallenne_accepting_calls',
      help: '1 while this recorder takes new calls (OPTIONS 200); 0 while it is stopping, full or short of disk (OPTIONS 503).',
      registers: [r],
      collect() { this.set(src.calls.availability() === null ? 1 : 0); },
    });
    const calls = new Counter({ name: 'tallenne_calls_total', help: 'Calls by outcome: recorded, rejected, failed (encode or index error), truncated (crash, disk full).', labelNames: ['result'], registers: [r] });
    for (const result of ['recorded', 'rejected', 'failed', 'truncated']) calls.inc({ result }, 0);
    const rejections = new Counter({ name: 'tallenne_calls_rejected_total', help: 'Rejected INVITEs by reason.', labelNames: ['reason'], registers: [r] });
    const encodeDuration = new Histogram({ name: 'tallenne_encode_duration_seconds', help: 'CPU time spent encoding one recording.', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: [r] });
    const rtf = new Gauge({ name: 'tallenne_encode_realtime_factor', help: 'Seconds of audio encoded per CPU second (last recordings, higher is faster).', registers: [r] });
    const mos = new Histogram({ name: 'tallenne_call_mos', help: 'Estimated MOS (ITU-T G.107 E-model) of each recorded leg with audio, at hang-up.', buckets: [1.5, 2, 2.5, 3, 3.5, 3.8, 4, 4.2, 4.3, 4.4, 4.5], registers: [r] });
    let audioSec = 0;
    let cpuSec = 0;
    const spoolRejected = new Counter({ name: 'tallenne_spool_records_rejected_total', help: 'Sealed spool blocks (records, in a version 2 spool) that failed authentication when read (tampered or damaged on disk) and were left out.', registers: [r] });
    const finalise = new Histogram({ name: 'tallenne_finalise_seconds', help: 'From a call\'s end to its recording being indexed (calls encoded live; not recovered spools).', buckets: [0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300], registers: [r] });
    const stagedFound = new Counter({ name: 'tallenne_staged_recordings_total', help: 'Recordings a recovered spool or a retry found staged by an earlier attempt, by outcome: reused (checked whole and published without encoding again) or reencoded (failed the check).', labelNames: ['outcome'], registers: [r] });
    for (const outcome of ['reused', 'reencoded']) stagedFound.inc({ outcome }, 0);
    s.finaliser.on('staged', (_id, outcome) => stagedFound.inc({ outcome }));
    s.finaliser.on('recorded', (entry, result, finaliseMs) => {
      calls.inc({ result: entry.status === 'truncated' ? 'truncated' : 'recorded' });
      spoolRejected.inc(result.spoolRecordsRejected);
      if (finaliseMs !== null) finalise.observe(finaliseMs / 1000);
      encodeDuration.observe(result.encodeCpuMs / 1000);
      for (const leg of entry.legs) if (leg.mos !== undefined) mos.observe(leg.mos);
      // An exponentially weighted ratio keeps the gauge current without unbounded history.
      audioSec = audioSec * 0.9 + result.audioMs / 1000;
      cpuSec = cpuSec * 0.9 + Math.max(result.encodeCpuMs, 0.001) / 1000;
      rtf.set(audioSec / cpuSec);
    });
    s.calls.on('rejected', (r) => {
      calls.inc({ result: 'rejected' });
      rejections.inc({ reason: r.reason });
    });
    const updateRejections = new Counter({ name: 'tallenne_call_updates_rejected_total', help: 'Refused re-INVITEs and UPDATEs inside calls, by reason (the call goes on).', labelNames: ['reason'], registers: [r] });
    s.calls.on('updateRejected', (x) => updateRejections.inc({ reason: x.reason }));
    const probes = new Counter({ name: 'tallenne_call_probes_total', help: 'In-dialog OPTIONS sent to the peers of paused, silent calls, by result: answered, gone (481: the call ends), unanswered (the call ends).', labelNames: ['result'], registers: [r] });
    for (const result of ['answered', 'gone', 'unanswered']) probes.inc({ result }, 0);
    s.calls.on('probed', (result) => probes.inc({ result }));
    s.finaliser.on('failed', () => calls.inc({ result: 'failed' }));

    new Counter({
      name: 'tallenne_sip_requests_total', help: 'SIP requests received (and BYEs sent) by method.', labelNames: ['method'], registers: [r],
      collect() { for (const [method, n] of Object.entries(src.sip.counters.requests)) mirror(this, { method }, n); },
    });
    new Counter({
      name: 'tallenne_sip_responses_total', help: 'SIP responses sent by status code.', labelNames: ['code'], registers: [r],
      collect() { for (const [code, n] of Object.entries(src.sip.counters.responses)) mirror(this, { code }, n); },
    });
    new Counter({ name: 'tallenne_sip_malformed_total', help: 'SIP messages that could not be parsed or framed.', registers: [r], collect() { mirror(this, {}, src.sip.counters.malformed); } });
    new Counter({
      name: 'tallenne_sip_refused_total',
      help: 'SIP messages and connections refused: source (not in allowed_sources), invite_rate (503), request_in_progress (500: a re-INVITE or UPDATE while another of the call is being answered), connection_cap, tls_handshake, client_name.',
      labelNames: ['reason'], registers: [r],
      collect() { for (const [reason, n] of Object.entries(src.sip.counters.refused)) mirror(this, { reason }, n); },
    });
    new Counter({
      name: 'tallenne_sip_connections_closed_total', help: 'SIP TCP/TLS connections closed by a timeout: idle, message_timeout (a message begun and never finished).',
      labelNames: ['reason'], registers: [r],
      collect() { for (const [reason, n] of Object.entries(src.sip.counters.connectionsClosed)) mirror(this, { reason }, n); },
    });
    new Counter({ name: 'tallenne_rtp_packets_total', help: 'RTP packets accepted and spooled.', registers: [r], collect() { mirror(this, {}, src.rtp.packets); } });
    new Counter({ name: 'tallenne_rtp_bytes_total', help: 'Bytes of accepted RTP packets.', registers: [r], collect() { mirror(this, {}, src.rtp.bytes); } });
    new Counter({ name: 'tallenne_rtp_packets_lost_total', help: 'RTP packets lost on the way (RFC 3550 cumulative loss).', registers: [r], collect() { mirror(this, {}, src.rtp.lost); } });
    new Counter({
      name: 'tallenne_rtp_packets_dropped_total', help: 'Datagrams received on RTP ports and dropped, by reason.', labelNames: ['reason'], registers: [r],
      collect() { for (const [reason, n] of Object.entries(src.rtp.dropped)) mirror(this, { reason }, n); },
    });
    new Counter({ name: 'tallenne_rtcp_packets_total', help: 'RTCP packets received.', registers: [r], collect() { mirror(this, {}, src.rtp.rtcp); } });
    new Counter({ name: 'tallenne_rtcp_sent_total', help: 'RTCP receiver reports sent.', registers: [r], collect() { mirror(this, {}, src.rtp.rtcpSent); } });
    new Counter({ name: 'tallenne_rtp_ssrc_changes_total', help: 'SSRC changes on legs after their first packet (a new source: transfer, codec change, SBC restart).', registers: [r], collect() { mirror(this, {}, src.rtp.ssrcChanges); } });
    new Gauge({ name: 'tallenne_rtp_legs_active', help: 'Legs being received now (one per recorded stream of each live call).', registers: [r], collect() { this.set(src.rtp.activeLegs.size); } });
    new Gauge({ name: 'tallenne_sip_dialogs', help: 'SIP dialogs open now.', registers: [r], collect() { this.set(src.sip.dialogCount); } });
    new Histogram({
      name: 'tallenne_rtp_jitter_seconds', help: 'Interarrival jitter (RFC 3550) of legs at hang-up.', buckets: [0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32], registers: [r],
      collect() { for (const ms of src.rtp.jitterObservations.drain()) this.observe(ms / 1000); },
    });
    new Gauge({ name: 'tallenne_encode_queue_length', help: 'Ended calls whose recording the encoder has not finished yet.', registers: [r], collect() { this.set(src.encoder.queueLength); } });
    new Gauge({ name: 'tallenne_encode_workers_busy', help: 'Encoder workers with a live call or an ended one to finish.', registers: [r], collect() { this.set(src.encoder.busy); } });
    new Gauge({ name: 'tallenne_encoder_lag_seconds', help: 'Largest distance between the wall clock and the audio encoded so far, among live calls (LAG_MS by design, more when the encoder is behind).', registers: [r], collect() { this.set(src.encoder.maxLagMs / 1000); } });
    new Gauge({
      name: 'tallenne_encoder_live_calls', help: 'Live calls followed by each encoder worker.', labelNames: ['worker'], registers: [r],
      collect() { src.encoder.liveCalls.forEach((n, i) => this.set({ worker: String(i) }, n)); },
    });
    new Gauge({ name: 'tallenne_recordings_stored', help: 'Recordings in the index.', registers: [r], async collect() { this.set(await src.index.count()); } });
    // The store counts its used bytes by a walk or listing at most once a minute.
    new Gauge({ name: 'tallenne_storage_bytes', help: 'Bytes of stored audio (refreshed at most once a minute).', registers: [r], async collect() { const u = await src.store.usage({ used: true }); if (u.usedBytes !== undefined) this.set(u.usedBytes); } });
    new Gauge({ name: 'tallenne_storage_size_bytes', help: 'Size of the data volume.', registers: [r], async collect() { const u = await src.store.usage(); if (u.volumeBytes !== undefined) this.set(u.volumeBytes); } });
    new Counter({
      name: 'tallenne_audio_decrypt_failures_total', help: 'Audio reads refused: a chunk or wrapped data key did not authenticate, or its master key is not held.', registers: [r],
      collect() { mirror(this, {}, src.store.decryptFailures); },
    });
    new Gauge({ name: 'tallenne_storage_free_bytes', help: 'Free bytes on the data volume.', registers: [r], async collect() { const u = await src.store.usage(); if (u.freeBytes !== undefined) this.set(u.freeBytes); } });
    new Counter({
      name: 'tallenne_retention_purged_total', help: 'Recordings destroyed by retention, by what was destroyed (audio or metadata).', labelNames: ['kind'], registers: [r],
      collect() { mirror(this, { kind: 'audio' }, src.purger.purgedTotal.audio); mirror(this, { kind: 'metadata' }, src.purger.purgedTotal.metadata); },
    });
    new Counter({ name: 'tallenne_retention_purge_runs_total', help: 'Runs of the purge job (scheduled every retention.purge_interval, or on demand).', registers: [r], collect() { mirror(this, {}, src.purger.runs); } });
    new Counter({
      name: 'tallenne_leases_expired_removed_total', help: 'Lease rows (spool leases, INVITE claims) the purge job deleted from the register after they ran out.', registers: [r],
      collect() { mirror(this, {}, src.purger.leasesRemoved); },
    });
    new Gauge({ name: 'tallenne_rtp_ports_in_use', help: 'UDP ports held by live legs (each leg holds an RTP and an RTCP port).', registers: [r], collect() { this.set(2 * src.ports.inUse); } });
    new Gauge({ name: 'tallenne_rtp_ports_total', help: 'UDP ports of the configured RTP range usable as RTP/RTCP pairs.', registers: [r], collect() { this.set(2 * src.ports.total); } });
    new Gauge({ name: 'tallenne_rtp_receive_batched', help: '1 when the RTP sockets are read in batches with recvmmsg (rtp.receive), 0 when Node reads them one datagram at a time.', registers: [r], collect() { this.set(src.ports.batched ? 1 : 0); } });
    new Counter({ name: 'tallenne_rtp_receive_batches_total', help: 'Batches of RTP datagrams read with recvmmsg; tallenne_rtp_packets_total over it is the packets per wake-up.', registers: [r], collect() { mirror(this, {}, src.ports.batchesRead); } });
    new Gauge({ name: 'tallenne_storage_outbox_recordings', help: 'Finished recordings waiting in the local outbox for their upload to S3 to be confirmed (0 with local storage).', registers: [r], collect() { this.set(src.outbox?.waiting ?? 0); } });
    new Counter({ name: 'tallenne_storage_upload_failures_total', help: 'Failed attempts to upload a recording to S3 (each is retried with backoff).', registers: [r], collect() { mirror(this, {}, src.outbox?.failures ?? 0); } });
    new Gauge({ name: 'tallenne_spool_pending', help: 'Ended calls not yet encoded and indexed.', registers: [r], collect() { this.set(src.finaliser.pending); } });
    // The bench's stage clock (TALLENNE_STAGE_CLOCK): present only when it is on.
    if (stageTotals()) {
      new Gauge({
        name: 'tallenne_stage_cpu_seconds', help: 'Bench stage clock: estimated CPU seconds per pipeline stage so far.', labelNames: ['stage'], registers: [r],
        collect() { for (const f of stageTotals()!.stages) this.set({ stage: f.stage }, f.seconds); },
      });
      new Gauge({
        name: 'tallenne_stage_calls', help: 'Bench stage clock: calls of each stage so far (timed 1 in TALLENNE_STAGE_CLOCK).', labelNames: ['stage'], registers: [r],
        collect() { for (const f of stageTotals()!.stages) this.set({ stage: f.stage }, f.calls); },
      });
      new Gauge({ name: 'tallenne_stage_worker_cpu_seconds', help: 'Bench stage clock: CPU seconds of the encoder threads, by their own clocks.', registers: [r], collect() { this.set(stageTotals()!.workerCpuSeconds); } });
    }
  }

  contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
