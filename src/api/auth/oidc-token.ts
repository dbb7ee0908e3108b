/**
 * Checks an OpenID Connect provider's access token presented as a Bearer token, with jose:
 * the signature against the provider's keys, an algorithm from the allow-list (so never
 * "none" nor HMAC), the issuer, the audience, and the expiry (required). An ID token (it
 * carries a nonce) is not an access token. Every refusal is an ApiError('API_INVALID_TOKEN')
 * whose message says which check failed; a key set that cannot be fetched is the provider's
 * fault, not the token's: ApiError('API_UNAVAILABLE').
 */
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { ApiError } from '../errors.js';

export interface AccessTokenRules {
  readonly issuer: string;
  readonly audience: string;
  readonly algorithms: readonly string[];
  readonly clockToleranceSec: number;
}

/** Three base64url parts, the first a JSON object (`{"` encodes as `eyJ`). */
const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** A compact JWS: the form of every token this module may accept. */
export function looksLikeJwt(token: string): boolean {
  return token.length <= 16_384 && JWT_SHAPE.test(token);
}

export async function verifyAccessToken(token: string, keys: JWTVerifyGetKey, rules: AccessTokenRules): Promise<JWTPayload> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys, {
      issuer: rules.issuer,
      audience: rules.audience,
      algorithms: [...rules.algorithms],
      clockTolerance: rules.clockToleranceSec,
      requiredClaims: ['exp', 'sub'],
    }));
  } catch (e) {
    throw refusal(e);
  }
  if (payload.nonce !== undefined) throw new ApiError('API_INVALID_TOKEN', 'an ID token is not an access token');
  return payload;
}

function refusal(e: unknown): ApiError {
  const bad = (why: string) => new ApiError('API_INVALID_TOKEN', `the token is refused: ${why}`);
  if (e instanceof errors.JWTExpired) return bad('it has expired');
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'iss') return bad('it was issued by another provider');
    if (e.claim === 'aud') return bad('it is meant for another audience');
    return bad(`claim "${e.claim}" is ${e.reason === 'missing' ? 'missing' : 'not valid'}`);
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return bad('its signature algorithm is not allowed');
  if (e instanceof errors.JWSSignatureVerificationFailed) return bad('its signature does not verify');
  if (e instanceof errors.JWKSNoMatchingKey) return bad('it is not signed by a key of the provider');
  if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid) {
    return new ApiError('API_UNAVAILABLE', 'the identity provider\'s keys cannot be fetched');
  }
  if (e instanceof errors.JOSEError) return bad('it is malformed');
  // Fetching the key set failed (network): not the caller's fault.
  return new ApiError('API_UNAVAILABLE', 'the identity provider\'s keys cannot be fetched');
}
