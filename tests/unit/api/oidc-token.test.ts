/**
 * Access tokens presented as Bearer tokens: only a token signed by the provider's key, with
 * an allowed algorithm, the provider as issuer, the API as audience and a future expiry is
 * accepted. Tokens are made here with jose, keys given as a local key set.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWTVerifyGetKey } from 'jose';
import { looksLikeJwt, verifyAccessToken, type AccessTokenRules } from '../../../src/api/auth/oidc-token.js';
import { ApiError } from '../../../src/api/errors.js';

const ISSUER = 'https://idp.example.net/realms/cc';
const RULES: AccessTokenRules = { issuer: ISSUER, audience: 'urn:tallenne:api', algorithms: ['RS256', 'ES256'], clockToleranceSec: 30 };
const KID = 'key-1';

let providerKey: CryptoKey;
let otherKey: CryptoKey;
let keys: JWTVerifyGetKey;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  providerKey = pair.privateKey;
  otherKey = (await generateKeyPair('RS256')).privateKey;
  keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'RS256', use: 'sig' }] });
});

function token(opts: { claims?: Record<string, unknown>; key?: CryptoKey; alg?: string; iss?: string; aud?: string; exp?: number | null; kid?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({ roles: ['agent'], ...opts.claims })
    .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? KID, typ: 'at+jwt' })
    .setSubject('s-1')
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? RULES.audience)
    .setIssuedAt(now);
  if (opts.exp !== null) jwt = jwt.setExpirationTime(opts.exp ?? now + 300);
  return jwt.sign(opts.key ?? providerKey);
}

async function refusal(t: string): Promise<ApiError> {
  const e = await verifyAccessToken(t, keys, RULES).then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(ApiError);
  return e as ApiError;
}

describe('verifying an access token', () => {
  it('accepts a token of the provider for this API and returns its claims', async () => {
    const payload = await verifyAccessToken(await token(), keys, RULES);
    expect(payload).toMatchObject({ sub: 's-1', iss: ISSUER, roles: ['agent'] });
  });

  it('refuses a token from another issuer', async () => {
    const e = await refusal(await token({ iss: 'https://evil.example.com' }));
    expect(e.code).toBe('API_INVALID_TOKEN');
    expect(e.status).toBe(401);
    expect(e.message).toMatch(/another provider/);
  });

  it('refuses a token signed with a different key under the provider key id', async () => {
    const e = await refusal(await token({ key: otherKey }));
    expect(e.code).toBe('API_INVALID_TOKEN');
    expect(e.message).toMatch(/signature does not verify/);
  });

  it('refuses a token whose key id the provider does not publish', async () => {
    const e = await refusal(await token({ key: otherKey, kid: 'key-9' }));
    expect(e.code).toBe('API_INVALID_TOKEN');
    expect(e.message).toMatch(/not signed by a key of the provider/);
  });

  it('refuses a token whose payload was altered after signing', async () => {
    const [h, , s] = (await token()).split('.');
    const forged = Buffer.from(JSON.stringify({ sub: 's-1', iss: ISSUER, aud: RULES.audience, exp: 4102444800, roles: ['admin'] })).toString('base64url');
    expect((await refusal(`${h}.${forged}.${s}`)).code).toBe('API_INVALID_TOKEN');
  });

  it('refuses an expired token, beyond the clock tolerance', async () => {
    const e = await refusal(await token({ exp: Math.floor(Date.now() / 1000) - 120 }));
    expect(e.code).toBe('API_INVALID_TOKEN');
    expect(e.message).toMatch(/expired/);
  });

  it('refuses a token without an expiry', async () => {
    const e = await refusal(await token({ exp: null }));
    expect(e.message).toMatch(/"exp" is missing/);
  });

  it('refuses an unsigned token (alg none)', async () => {
    const unsigned = new UnsecuredJWT({ roles: ['admin'] }).setSubject('s-1').setIssuer(ISSUER).setAudience(RULES.audience).setExpirationTime('5m').encode();
    expect(looksLikeJwt(unsigned)).toBe(true);
    const e = await refusal(unsigned);
    expect(e.code).toBe('API_INVALID_TOKEN');
    expect(e.message).toMatch(/algorithm is not allowed/);
  });

  it('refuses an HMAC token (an algorithm outside the allow-list)', async () => {
    const secret = new TextEncoder().encode('k'.repeat(32));
    const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: KID }).setSubject('s-1').setIssuer(ISSUER).setAudience(RULES.audience).setExpirationTime('5m').sign(secret);
    expect((await refusal(hs)).message).toMatch(/algorithm is not allowed/);
  });

  it('refuses a token for another audience', async () => {
    const e = await refusal(await token({ aud: 'https://graph.example.net' }));
    expect(e.code).toBe('API_INVALID_TOKEN');
    expect(e.message).toMatch(/another audience/);
  });

  it('refuses an ID token (it carries a nonce)', async () => {
    const e = await refusal(await token({ claims: { nonce: 'n-0S6_WzA2Mj' } }));
    expect(e.message).toMatch(/ID token is not an access token/);
  });

  it('refuses malformed text shaped like a JWT', async () => {
    expect((await refusal('eyJhbGciOiJSUzI1NiJ9.e30.AAAA')).code).toBe('API_INVALID_TOKEN');
    expect((await refusal('eyJub3QganNvbg.e30.AAAA')).code).toBe('API_INVALID_TOKEN');
  });

  it('tells a JWT from a local API token', () => {
    expect(looksLikeJwt('tln.0123456789abcdef.' + 'A'.repeat(43))).toBe(false);
    expect(looksLikeJwt('eyJhbGciOiJSUzI1NiJ9.e30.c2ln')).toBe(true);
    expect(looksLikeJwt('eyJhbGciOiJSUzI1NiJ9.e30')).toBe(false);
    expect(looksLikeJwt('eyJhbGciOiJSUzI1NiJ9.e30.c2ln d')).toBe(false);
    expect(looksLikeJwt('a.b.c')).toBe(false);
  });

  it('answers 503, not 401, when the key set cannot be fetched', async () => {
    const unreachable: JWTVerifyGetKey = async () => {
      throw new TypeError('fetch failed');
    };
    const e = await verifyAccessToken(await token(), unreachable, RULES).then(() => null, (err: unknown) => err as ApiError);
    expect(e?.code).toBe('API_UNAVAILABLE');
    expect(e?.status).toBe(503);
  });
});
