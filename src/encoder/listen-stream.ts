/**
 * A live call's audio as an Ogg Opus stream, a little behind the capture: a CallEncoder
 * (call-encoder.ts), the recording's own pipeline, run on the call's spool from `fromMs` on
 * with a shorter lag and small pages, its pages handed to `onPage` instead of a file. Both
 * channels, customer left and agent right, as in the recording. It runs on an encoder thread
 * (encoder-thread.ts), at the encoders' lower priority, never on the capture's thread; the
 * pool (pool.ts) carries its pages to the listener's HTTP response.
 *
 * The stream is its own listener's: it never touches the recording (the spool is only read)
 * and ends when the spool's END record is read, when the call is over and the spool has no
 * more, when stop() is called (the listener went away), or when the listener falls more than
 * `windowBytes` behind: every page sent counts until ack() says it has left for the
 * listener, and a page that would take the count past the window cuts the listen off
 * (`too_slow`) instead of waiting in memory. Between reads the arrival clock moves on with
 * the wall clock, so a quiet call still streams (as silence). Memory is the CallEncoder's:
 * the follower's buffer, the timeline's rings and one Ogg page.
 */
import { threadId } from 'node:worker_threads';
import { epochNow } from '../rtp/receiver.js';
import { TallenneError } from '../errors.js';
import { CallEncoder } from './call-encoder.js';
import type { RecordingOutput } from './recording-output.js';

/** How late a packet may arrive and still be heard: shorter than a recording's, to stay near live. */
export const LISTEN_LAG_MS = 500;
/** How often the spool is read for new records. */
export const LISTEN_POLL_MS = 100;
/**
 * Arrival time known to be on disk: the capture hands its spool to the kernel every 200 ms,
 * so by now − this every record has been written, and silence can be emitted up to there.
 */
const SPOOL_SETTLED_MS = 400;
/** Audio packets per Ogg page: 200 ms, so the listener is never a whole second behind. */
const PAGE_PACKETS = 10;
/**
 * Bytes sent and not yet taken by the listener, at most (about 85 s at the default 24 kbit/s,
 * and the most a listener can hold in the daemon's memory; the kernel's socket buffers come
 * before it).
 */
export const LISTEN_WINDOW_BYTES = 256 * 1024;

/** What a listen needs: the call's spool (and its key when sealed) and the encoder settings. */
export interface ListenJob {
  readonly spoolPath: string;
  /** The data key of a sealed spool; the stream's own copy, overwritten when it ends. */
  readonly spoolKey?: Uint8Array;
  /** Arrival time (the capture's clock, epochNow): packets that arrived before it are not played. */
  readonly fromMs: number;
  readonly complexity: number;
  readonly bitrate: number;
  /** DTMF tones replaced by silence, as in the recording (`[privacy] mask_dtmf`). */
  readonly maskDtmf: boolean;
  /** Bytes the listener may fall behind before it is cut off (default LISTEN_WINDOW_BYTES). */
  readonly windowBytes?: number;
}

/** Why a listen ended; the label of `tallenne_listens_ended_total`. */
export const LISTEN_END_REASONS = ['call_ended', 'listener_gone', 'too_slow', 'failed', 'shutdown'] as const;
export type ListenEndReason = (typeof LISTEN_END_REASONS)[number];

export interface ListenEnd {
  readonly reason: ListenEndReason;
  /** Ogg bytes sent to the listener. */
  readonly bytes: number;
  /** 20 ms frames encoded. */
  readonly frames: number;
  /** The thread the stream was encoded on (node:worker_threads threadId; the main thread is 0). Absent when no thread reported. */
  readonly thread?: number;
  /** For `failed`: the error's code and message (they name paths and ids, never a key). */
  readonly code?: string;
  readonly message?: string;
}

export interface ListenStreamOptions {
  /** Each Ogg page, in a buffer of its own (the receiver may keep it or transfer it). */
  readonly onPage: (page: Uint8Array) => void;
  /** The capture's arrival clock (default epochNow, the receivers' own). */
  readonly now?: () => number;
}

export class ListenStream {
  private readonly encoder: CallEncoder;
  private readonly now: () => number;
  private readonly window: number;
  /** Set once the stream must stop: the listener went away, or fell too far behind. */
  private cut: ListenEndReason | null = null;
  private callOver = false;
  private unacked = 0;
  private sent = 0;
  private wake: (() => void) | null = null;

  constructor(private readonly job: ListenJob, private readonly opts: ListenStreamOptions) {
    this.now = opts.now ?? epochNow;
    this.window = job.windowBytes ?? LISTEN_WINDOW_BYTES;
    const encodeJob = {
      spoolPath: job.spoolPath,
      id: 'live listen',
      complexity: job.complexity,
      bitrate: job.bitrate,
      skipSilence: true,
      maskDtmf: job.maskDtmf,
      ...(job.spoolKey ? { spoolKey: job.spoolKey } : {}),
    };
    const output: RecordingOutput = { sink: { write: (page) => this.deliver(page) }, finish: () => null, discard: () => undefined };
    this.encoder = new CallEncoder(encodeJob, {
      fromMs: job.fromMs,
      lagMs: LISTEN_LAG_MS,
      pagePackets: PAGE_PACKETS,
      alignSenderReports: false,
      output: () => output,
    });
  }

  /** Frames (20 ms) sent so far. */
  get frameCount(): number {
    return this.encoder.framesEmitted;
  }

  /** Bytes sent and not yet acknowledged. */
  get unackedBytes(): number {
    return this.unacked;
  }

  /** `bytes` of the pages sent have left for the listener. */
  ack(bytes: number): void {
    this.unacked = Math.max(0, this.unacked - bytes);
  }

  /** The call has ended: the stream ends once its spool has no more. */
  callEnded(): void {
    this.callOver = true;
    this.wake?.();
  }

  /** The listener went away: stops at the next step, and run() resolves. Idempotent. */
  stop(): void {
    this.cut ??= 'listener_gone';
    this.wake?.();
  }

  /** Streams until the call ends, stop(), the listener falls behind or an error; always closes the spool and forgets the key. */
  async run(): Promise<ListenEnd> {
    const enc = this.encoder;
    try {
      while (this.cut === null) {
        const ended = this.callOver;
        const n = await enc.advance();
        if (this.cut !== null) break;
        if (enc.spoolEnded || (ended && n === 0)) {
          // The call is over: its last audio, then the EOS page (nothing if no META was ever read).
          if (enc.answeredAt !== null) await enc.finish();
          break;
        }
        enc.settledUntil(this.now() - SPOOL_SETTLED_MS);
        enc.flushPages();
        if (this.cut !== null) break;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, LISTEN_POLL_MS);
        });
        this.wake = null;
      }
      return this.end(this.cut ?? 'call_ended');
    } catch (e) {
      const code = e instanceof TallenneError ? e.code : 'TALLENNE_ENCODE_FAILED';
      return { ...this.end('failed'), code, message: (e as Error).message };
    } finally {
      await enc.abort();
      this.job.spoolKey?.fill(0);
    }
  }

  private end(reason: ListenEndReason): ListenEnd {
    return { reason, bytes: this.sent, frames: this.frameCount, thread: threadId };
  }

  /** One page from the Ogg writer (which reuses its buffer): a copy of its own to the listener, within the window. */
  private deliver(page: Uint8Array): void {
    if (this.cut !== null) return;
    if (this.unacked + page.length > this.window) {
      this.cut = 'too_slow';
      return;
    }
    const own = new Uint8Array(page.length);
    own.set(page);
    this.unacked += own.length;
    this.sent += own.length;
    this.opts.onPage(own);
  }
}
