/**
 * Typed errors with stable codes. Every code is listed in ERROR_CODES with the
 * message an operator sees; a test checks that each code is documented in README.md.
 */
export const ERROR_CODES = {
  TALLENNE_CONFIG_INVALID: 'the configuration file has errors',
  TALLENNE_CONFIG_UNREADABLE: 'the configuration file cannot be read',
  TALLENNE_KEY_FILE_INSECURE: 'a key file can be read or written by group or others',
  TALLENNE_SIP_MALFORMED: 'a SIP message could not be parsed',
  TALLENNE_SDP_MALFORMED: 'an SDP body could not be parsed',
  TALLENNE_METADATA_MALFORMED: 'SIPREC recording metadata could not be parsed',
  TALLENNE_NO_USABLE_CODEC: 'no offered codec can be recorded',
  TALLENNE_NO_OFFER: 'the INVITE carries no SDP offer',
  TALLENNE_SRTP_REQUIRED: 'the offer is plain RTP and rtp.srtp is "required"',
  TALLENNE_SRTP_UNSUPPORTED: 'the offered media security cannot be used (DTLS-SRTP, or no supported a=crypto)',
  TALLENNE_UNSUPPORTED_MEDIA_TYPE: 'the body is of a type the recorder does not take',
  TALLENNE_DIALOG_NOT_FOUND: 'the request names no call this recorder has',
  TALLENNE_MERGED_REQUEST: 'a copy of an INVITE another recorder (or another dialog here) has already admitted',
  TALLENNE_SPOOL_UNWRITABLE: 'a spool file for the call cannot be created',
  TALLENNE_CAPACITY: 'the configured capacity is reached',
  TALLENNE_SHUTTING_DOWN: 'the daemon is shutting down',
  TALLENNE_NO_PORTS: 'the RTP port range is exhausted',
  TALLENNE_BATCH_RECEIVE: 'batched RTP receive (rtp.receive = "batched") is not available',
  TALLENNE_DISK_LOW: 'free space on the data disk is below the configured floor',
  TALLENNE_SPOOL_CORRUPT: 'a spool file is damaged',
  TALLENNE_SPOOL_KEY: 'a sealed spool cannot be opened: its key cannot be unwrapped or does not fit',
  TALLENNE_ENCODE_FAILED: 'encoding a recording failed',
  TALLENNE_NOT_FOUND: 'no such recording',
  TALLENNE_ERASURE_REFUSED: 'the retention policy does not allow erasure',
  TALLENNE_AUDIT_BROKEN: 'the audit chain does not verify',
  TALLENNE_INDEX_VERSION: 'the index was written by a newer tallenne',
  TALLENNE_INDEX_SCHEMA: 'the PostgreSQL register has migrations not yet applied (tallenne index migrate)',
  TALLENNE_INDEX_COPY: 'an index copy was refused or its count check failed',
  TALLENNE_INDEX_UNREACHABLE: 'the PostgreSQL register cannot be reached or refused the connection',
  TALLENNE_KEY_FILE_INVALID: 'the master key file is missing, unreadable or damaged',
  TALLENNE_KEY_UNKNOWN: 'data is wrapped under a master key the key file does not hold',
  TALLENNE_KEY_IN_USE: 'the master key still wraps data keys (or is the current key)',
  TALLENNE_DECRYPT_FAILED: 'encrypted data failed authentication: damaged, tampered, reordered, or the wrong key',
  TALLENNE_S3_CREDENTIALS: 'the S3 credentials are missing, unreadable or malformed',
  TALLENNE_STORAGE_UNAVAILABLE: 'the audio store cannot be reached or refused the request',
  TALLENNE_UPLOAD_MISMATCH: 'an uploaded recording does not match what was written (size or checksum)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class TallenneError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code], options);
    this.code = code;
    this.name = 'TallenneError';
  }
}

export class ConfigError extends TallenneError {
  /** One line per problem, each starting with the key path. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[], file?: string) {
    super('TALLENNE_CONFIG_INVALID', `${file ?? 'config'}: ${problems.length} error(s)\n  ${problems.join('\n  ')}`);
    this.problems = problems;
    this.name = 'ConfigError';
  }
}

/** A message we received that we cannot use; answered with `status` on the wire. */
export class ProtocolError extends TallenneError {
  readonly status: number;
  constructor(code: ErrorCode, status: number, message: string) {
    super(code, message);
    this.status = status;
    this.name = 'ProtocolError';
  }
}
