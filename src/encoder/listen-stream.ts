/**
 * A live call's audio as an Ogg Opus stream, a little behind the capture: a CallEncoder
 * (call-encoder.ts), the recording's own pipeline, run on the call's spool from `fromMs` on
 * with a shorter lag and small pages, its pages sent to `onPage` instead of a file. Both
 * channels, customer left and agent right, as in the recording.
 *
 * The stream is its own listener's: it never touches the recording (the spool is only read)
 * and ends when the spool's END record is read, when the call is over and the spool has no
 * more, or when stop() is called (the listener went away). Between reads the arrival clock
 * moves on with the wall clock, so a quiet call still streams (as silence). Memory is the
 * CallEncoder's: the follower's buffer, the timeline's rings and one Ogg page.
 */
import { epochNow } from '../rtp/receiver.js';
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

export interface ListenStreamOptions {
  readonly spoolPath: string;
  /** The data key of a sealed spool. */
  readonly spoolKey?: Uint8Array;
  /** Arrival time (the capture's clock, epochNow): packets that arrived before it are not played. */
  readonly fromMs: number;
  readonly complexity: number;
  readonly bitrate: number;
  /** Each Ogg page, the listener's to keep. */
  readonly onPage: (page: Buffer) => void;
  /** True once the call has ended (its spool then grows no more). */
  readonly callEnded: () => boolean;
  /** The capture's arrival clock (default epochNow, the receivers' own). */
  readonly now?: () => number;
}

/** Pages to the listener: nothing to commit or remove. */
function listenerOutput(onPage: (page: Buffer) => void): RecordingOutput {
  return {
    sink: {
      // The writer reuses its page buffer: the listener gets a copy.
      write: (page) => onPage(Buffer.from(page)),
    },
    finish: () => null,
    discard: () => undefined,
  };
}

export class ListenStream {
  private readonly encoder: CallEncoder;
  private readonly now: () => number;
  private stopped = false;
  private wake: (() => void) | null = null;

  constructor(private readonly opts: ListenStreamOptions) {
    this.now = opts.now ?? epochNow;
    const job = {
      spoolPath: opts.spoolPath,
      id: 'live listen',
      complexity: opts.complexity,
      bitrate: opts.bitrate,
      skipSilence: true,
      maskDtmf: false,
      ...(opts.spoolKey ? { spoolKey: opts.spoolKey } : {}),
    };
    this.encoder = new CallEncoder(job, {
      fromMs: opts.fromMs,
      lagMs: LISTEN_LAG_MS,
      pagePackets: PAGE_PACKETS,
      alignSenderReports: false,
      output: () => listenerOutput(opts.onPage),
    });
  }

  /** Frames (20 ms) sent so far. */
  get frameCount(): number {
    return this.encoder.framesEmitted;
  }

  /** Stops at the next step; run() then resolves. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** Streams until the call ends or stop(); always closes the spool. */
  async run(): Promise<void> {
    const enc = this.encoder;
    try {
      while (!this.stopped) {
        const ended = this.opts.callEnded();
        const n = await enc.advance();
        if (enc.spoolEnded || (ended && n === 0)) break;
        enc.settledUntil(this.now() - SPOOL_SETTLED_MS);
        enc.flushPages();
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, LISTEN_POLL_MS);
        });
        this.wake = null;
      }
      // The call is over: its last audio, then the EOS page (nothing if no META was ever read).
      if (!this.stopped && enc.answeredAt !== null) await enc.finish();
    } finally {
      await enc.abort();
    }
  }
}
