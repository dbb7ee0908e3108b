/**
 * The SRTP crypto suites the recorder accepts, named as SDES writes them (RFC 4568 §6.2,
 * RFC 7714 §12), with the sizes every other SRTP module reads from here.
 */

export type SrtpSuiteName =
  | 'AES_CM_128_HMAC_SHA1_80'
  | 'AES_CM_128_HMAC_SHA1_32'
  | 'AEAD_AES_128_GCM'
  | 'AEAD_AES_256_GCM';

export interface SrtpSuite {
  readonly name: SrtpSuiteName;
  /** 'cm': AES counter mode + HMAC-SHA1 (RFC 3711); 'gcm': AES-GCM AEAD (RFC 7714). */
  readonly transform: 'cm' | 'gcm';
  /** Master and session encryption key bytes. */
  readonly keyBytes: number;
  /** Master and session salt bytes. */
  readonly saltBytes: number;
  /** Session authentication key bytes (HMAC-SHA1); 0 for AEAD. */
  readonly authKeyBytes: number;
  /** Authentication tag bytes on SRTP packets. */
  readonly srtpTagBytes: number;
  /** Authentication tag bytes on SRTCP packets (80 bits for both CM suites, RFC 4568 §6.2). */
  readonly srtcpTagBytes: number;
  /** Largest key lifetime in packets: 2^48 for SRTP (RFC 3711 §9.2), 2^31 for SRTCP. */
  readonly maxLifetime: number;
}

const SRTP_MAX_LIFETIME = 2 ** 48;

export const SRTP_SUITES: Readonly<Record<SrtpSuiteName, SrtpSuite>> = {
  AES_CM_128_HMAC_SHA1_80: {
    name: 'AES_CM_128_HMAC_SHA1_80', transform: 'cm', keyBytes: 16, saltBytes: 14,
    authKeyBytes: 20, srtpTagBytes: 10, srtcpTagBytes: 10, maxLifetime: SRTP_MAX_LIFETIME,
  },
  AES_CM_128_HMAC_SHA1_32: {
    name: 'AES_CM_128_HMAC_SHA1_32', transform: 'cm', keyBytes: 16, saltBytes: 14,
    authKeyBytes: 20, srtpTagBytes: 4, srtcpTagBytes: 10, maxLifetime: SRTP_MAX_LIFETIME,
  },
  AEAD_AES_128_GCM: {
    name: 'AEAD_AES_128_GCM', transform: 'gcm', keyBytes: 16, saltBytes: 12,
    authKeyBytes: 0, srtpTagBytes: 16, srtcpTagBytes: 16, maxLifetime: SRTP_MAX_LIFETIME,
  },
  AEAD_AES_256_GCM: {
    name: 'AEAD_AES_256_GCM', transform: 'gcm', keyBytes: 32, saltBytes: 12,
    authKeyBytes: 0, srtpTagBytes: 16, srtcpTagBytes: 16, maxLifetime: SRTP_MAX_LIFETIME,
  },
};

/** Our order of preference when we offer; an answer follows the offerer's order instead. */
export const SRTP_SUITE_NAMES: readonly SrtpSuiteName[] = [
  'AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32',
];

export function srtpSuite(name: string): SrtpSuite | undefined {
  return Object.prototype.hasOwnProperty.call(SRTP_SUITES, name) ? SRTP_SUITES[name as SrtpSuiteName] : undefined;
}
