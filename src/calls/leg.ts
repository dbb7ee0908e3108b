/**
 * One recorded stream of a call: what the offer's m-line made of it (the LegDescriptor:
 * index, label, role, channel, formats), the RTP/RTCP port pair it is received on, and the
 * receiver that spools its packets. The three live and change together, so nothing pairs
 * them by position in parallel lists.
 */
import type { Logger } from '../log.js';
import type { PortPair } from '../rtp/ports.js';
import type { RtpCounters } from '../rtp/counters.js';
import { RtpLegReceiver } from '../rtp/receiver.js';
import type { SpoolWriter } from '../spool/writer.js';
import type { LegDescriptor, MediaFormat } from '../types.js';

export class Leg {
  private _descriptor: LegDescriptor;
  readonly pair: PortPair;
  readonly receiver: RtpLegReceiver;

  constructor(opts: { descriptor: LegDescriptor; pair: PortPair; spool: SpoolWriter; counters: RtpCounters; log: Logger }) {
    this._descriptor = opts.descriptor;
    this.pair = opts.pair;
    // Spool records name the leg by its m-line index, as LegDescriptor.index does.
    this.receiver = new RtpLegReceiver({
      legIndex: opts.descriptor.index, pair: opts.pair, spool: opts.spool, formats: opts.descriptor.formats, counters: opts.counters, log: opts.log,
    });
  }

  /** The m-line index in the offer: stable for the life of the call. */
  get index(): number {
    return this._descriptor.index;
  }

  get descriptor(): LegDescriptor {
    return this._descriptor;
  }

  /** A re-offer changed the codec: the descriptor and the receiver follow; ports stay. */
  setFormats(formats: readonly MediaFormat[]): void {
    this._descriptor = { ...this._descriptor, formats };
    this.receiver.setFormats(formats);
  }

  /** Stops receiving; returns the port pair for the caller to release. */
  close(): PortPair {
    return this.receiver.close();
  }
}
