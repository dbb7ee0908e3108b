/**
 * The domain vocabulary shared by every stage: what a recording is, as the spool, the
 * encoder and the index see it. Nothing here holds a clear phone number or a customer's
 * name: those live only in memory inside a CallSession (see src/calls/).
 */

import type { WrappedKey } from './crypto/keyring.js';

export type Role = 'customer' | 'agent' | 'other';
export type Direction = 'inbound' | 'outbound' | 'internal' | 'unknown';

/** Codec names as the engine knows them (SDP encoding names, upper-cased). */
export type CodecName = 'PCMU' | 'PCMA' | 'G722' | 'L16' | 'OPUS' | 'TELEPHONE-EVENT' | 'CN';

export interface MediaFormat {
  readonly pt: number;
  readonly codec: CodecName;
  /** RTP clock rate (G.722 is 8000 on the wire, 16000 in samples). */
  readonly clockRate: number;
  readonly channels: number;
}

/** One recorded leg (one offered m-line = one RTP stream towards us). */
export interface LegDescriptor {
  /** Index of the m-line in the offer; stable for the life of the call. */
  readonly index: number;
  /** SIPREC a=label, when offered. */
  readonly label?: string;
  readonly role: Role;
  /** Output channel: 0 = left, 1 = right. */
  readonly channel: 0 | 1;
  /** Payload types the leg may carry: the chosen audio codec plus events and comfort noise. */
  readonly formats: readonly MediaFormat[];
}

/** A participant as stored: no clear number, no customer name. */
export interface StoredParticipant {
  readonly id: string;
  readonly role: Role;
  /** Masked number of a customer, or an extension / service number of the organisation. */
  readonly number?: string;
  /** For agents only: the directory id and name. */
  readonly agentId?: string;
  readonly agentName?: string;
  /** Stream labels this participant sends. */
  readonly sends: readonly string[];
  /** Milliseconds since answer when the participant joined / left (conference, transfer). */
  readonly joinedMs?: number;
  readonly leftMs?: number;
}

export interface PauseInterval {
  readonly startMs: number;
  /** Absent while still paused. */
  endMs?: number;
}

export interface DtmfEvent {
  /** Milliseconds since answer. */
  readonly atMs: number;
  readonly durationMs: number;
  /** The digit, or '*masked*' when DTMF masking is on. */
  readonly digit: string;
  readonly leg: number;
}

/** What the spool carries about a call, and what the index stores (plus results). */
export interface RecordingMeta {
  readonly id: string;
  readonly callId: string;
  readonly siprecSessionId?: string;
  readonly groupId?: string;
  readonly siprec: boolean;
  /** Epoch ms when the 200 OK was sent: the start of the timeline. */
  readonly answeredAt: number;
  readonly direction: Direction;
  /** Masked customer number, e.g. "+358401234***". */
  readonly customerNumber?: string;
  /** HMAC-SHA-256 (hex) of the normalised E.164 customer number. */
  readonly customerNumberHash?: string;
  readonly serviceNumber?: string;
  readonly agentId?: string;
  readonly agentName?: string;
  readonly team?: string;
  readonly trunk?: string;
  readonly participants: readonly StoredParticipant[];
  readonly legs: readonly LegDescriptor[];
  /** Opaque vendor data kept from SIPREC extension elements (no personal data). */
  readonly extensions?: Readonly<Record<string, string>>;
  /** `[cluster] node_id` of the recorder that answered the call (absent in entries written before it existed). */
  readonly node?: string;
}

export type RecordingStatus = 'complete' | 'truncated';

export interface LegStats {
  readonly index: number;
  readonly label?: string;
  readonly role: Role;
  readonly codec: CodecName | 'none';
  readonly packets: number;
  readonly lost: number;
  readonly ssrcs: number;
  readonly jitterMs: number;
  /** Estimated MOS (ITU-T G.107 E-model, src/quality/emodel.ts); absent without audio or in older entries. */
  readonly mos?: number;
}

/** The index entry of a recording. */
export interface RecordingEntry extends Omit<RecordingMeta, 'legs'> {
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly status: RecordingStatus;
  readonly endReason: string;
  readonly legs: readonly LegStats[];
  readonly pauses: readonly PauseInterval[];
  readonly dtmf: readonly DtmfEvent[];
  /** The audio's AudioStore key, e.g. "recordings/2026/11/22/<id>.opus". */
  readonly file: string;
  /** Plaintext bytes of the audio (what a reader gets), whatever it takes on disk. */
  readonly fileBytes: number;
  /** SHA-256 (hex) of the stored object's bytes, as the store answered when it was published. */
  readonly fileSha256?: string;
  /**
   * The audio's data key wrapped by a master key (encryption at rest); absent for a plain
   * file. Destroying it is what makes the audio unrecoverable (src/retention/destroy.ts).
   */
  readonly dataKey?: WrappedKey;
  readonly sampleRate: number;
  readonly channels: number;
  /** Set by the register: expiry times and the policy that gave them. */
  readonly retention?: {
    readonly policy: string;
    readonly audioExpiresAt: string;
    readonly metadataExpiresAt: string;
  };
  readonly hold?: { readonly reason: string; readonly until?: string; readonly by: string; readonly at: string };
  /** Set when the audio has been purged and only metadata is left. */
  readonly audioPurgedAt?: string;
}
