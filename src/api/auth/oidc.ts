/**
 * The relying party towards one OpenID Connect provider (`[auth.oidc]`), with openid-client
 * for the login and jose for access tokens:
 *
 * - discovery at start, retried with backoff while the provider cannot be reached (the
 *   daemon records calls meanwhile; status() says why SSO is not available);
 * - the authorisation-code flow with PKCE: beginLogin() keeps state, nonce and the code
 *   verifier server-side under a random pre-login id (the browser holds only that id, in a
 *   short-lived cookie), finishLogin() takes them back once, exchanges the code and checks
 *   the ID token (signature, issuer, audience, expiry, nonce);
 * - the provider's access tokens as Bearer tokens (verifyBearer), against its JWKS.
 *
 * Claims become an Identity in oidc-claims.ts; the HTTP side is oidc-routes.ts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { OidcConfig } from '../../config/schema.js';
import { TallenneError } from '../../errors.js';
import { assertPrivateKeyFile, KeyFileError } from '../../secrets/key-file.js';
import type { Logger } from '../../log.js';
import { ApiError } from '../errors.js';
import type { Identity } from './identity.js';
import { identityFromClaims } from './oidc-claims.js';
import { looksLikeJwt, verifyAccessToken } from './oidc-token.js';

/** How long a started login may take at the provider. */
export const PRE_LOGIN_TTL_MS = 10 * 60_000;
/** Logins in progress kept at most; the oldest is dropped beyond it. */
const MAX_PENDING = 10_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;

interface PendingLogin {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  readonly expiresAt: number;
}

interface Discovered {
  readonly config: client.Configuration;
  readonly issuer: string;
  readonly keys: JWTVerifyGetKey;
}

/** A login that did not succeed: `code` goes to the audit log and the page, `detail` to the log. */
export class OidcLoginError extends Error {
  constructor(
    readonly code: 'no-login-in-progress' | 'provider-refused' | 'response-invalid' | 'no-role' | 'unavailable',
    readonly detail: string,
    /** Who the provider said logged in, when it got that far. */
    readonly user?: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'OidcLoginError';
  }
}

export interface OidcClientOptions {
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  readonly now?: () => number;
}

export class OidcClient {
  private discovered: Discovered | null = null;
  private started = false;
  private lastError = 'no answer yet';
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly pending = new Map<string, PendingLogin>();
  private markReady!: () => void;
  /** Resolves once discovery has succeeded. */
  readonly whenReady: Promise<void> = new Promise((r) => {
    this.markReady = r;
  });

  constructor(
    readonly config: OidcConfig,
    private readonly clientSecret: string | undefined,
    private readonly log: Logger,
    private readonly opts: OidcClientOptions = {},
  ) {}

  /** Reads the client secret (refused when the file is readable by others) and builds the client. */
  static fromConfig(config: OidcConfig, log: Logger, opts: OidcClientOptions = {}): OidcClient {
    return new OidcClient(config, config.client_secret_file ? readClientSecret(config.client_secret_file) : undefined, log, opts);
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Starts discovery in the background; it is retried until it succeeds or close(). */
  start(): void {
    if (this.started) return;
    this.started = true;
    void this.discover();
  }

  get ready(): boolean {
    return this.discovered !== null;
  }

  /** "ok", or why SSO is not available now (for /readyz; never fails readiness to record). */
  status(): string {
    if (this.discovered) return 'ok';
    return `provider not reachable (${this.lastError}); retrying`;
  }

  private async discover(): Promise<void> {
    const c = this.config;
    const insecure = new URL(c.issuer).protocol === 'http:';
    try {
      const metadata: Partial<client.ClientMetadata> = {
        redirect_uris: [c.redirect_url],
        response_types: ['code'],
        [client.clockTolerance]: c.clock_tolerance.ms / 1000,
      };
      const config = await client.discovery(
        new URL(c.issuer),
        c.client_id,
        metadata,
        this.clientSecret !== undefined ? client.ClientSecretBasic(this.clientSecret) : client.None(),
        { timeout: 10, ...(insecure ? { execute: [client.allowInsecureRequests] } : {}) },
      );
      const server = config.serverMetadata();
      if (!server.jwks_uri) throw new Error('the provider publishes no jwks_uri');
      if (this.closed) return;
      this.discovered = {
        config,
        issuer: server.issuer,
        keys: createRemoteJWKSet(new URL(server.jwks_uri), { timeoutDuration: 5_000, cooldownDuration: 30_000 }),
      };
      this.failures = 0;
      this.lastError = '';
      this.log.info({ issuer: server.issuer }, 'OIDC provider discovered; single sign-on is available');
      this.markReady();
    } catch (e) {
      this.failures++;
      this.lastError = describeFailure(e);
      const delay = Math.min(this.opts.retryMaxMs ?? RETRY_MAX_MS, (this.opts.retryMinMs ?? RETRY_MIN_MS) * 2 ** Math.min(this.failures - 1, 16));
      this.log.warn({ issuer: c.issuer, err: this.lastError, retryInMs: delay }, 'OIDC discovery failed; single sign-on is unavailable until the provider answers');
      if (!this.closed) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          void this.discover();
        }, delay);
        this.retryTimer.unref();
      }
    }
  }

  private need(): Discovered {
    if (!this.discovered) throw new OidcLoginError('unavailable', this.status());
    return this.discovered;
  }

  /** Starts a login: the provider URL to send the browser to, and the pre-login id to keep. */
  async beginLogin(): Promise<{ url: URL; preLoginId: string }> {
    const d = this.need();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(d.config, {
      redirect_uri: this.config.redirect_url,
      scope: this.config.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const preLoginId = randomBytes(32).toString('base64url');
    this.remember(preLoginId, { state, nonce, codeVerifier, expiresAt: this.now() + PRE_LOGIN_TTL_MS });
    return { url, preLoginId };
  }

  private remember(id: string, p: PendingLogin): void {
    if (this.pending.size >= MAX_PENDING) {
      const now = this.now();
      for (const [k, v] of this.pending) if (v.expiresAt <= now) this.pending.delete(k);
      if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    }
    this.pending.set(id, p);
  }

  /**
   * Completes a login from the provider's redirect (its query string): the pre-login entry
   * is used once; the code is exchanged with the PKCE verifier; the ID token's nonce, the
   * state and the token's signature and claims are checked by openid-client.
   */
  async finishLogin(preLoginId: string | undefined, query: string): Promise<Identity> {
    const p = preLoginId !== undefined ? this.pending.get(preLoginId) : undefined;
    if (preLoginId !== undefined) this.pending.delete(preLoginId);
    if (!p || p.expiresAt <= this.now()) throw new OidcLoginError('no-login-in-progress', 'no login was started from this browser, or it took too long');
    const d = this.need();
    const current = new URL(this.config.redirect_url);
    current.search = query;
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.authorizationCodeGrant(d.config, current, {
        pkceCodeVerifier: p.codeVerifier,
        expectedState: p.state,
        expectedNonce: p.nonce,
        idTokenExpected: true,
      });
      claims = { ...tokens.claims() };
    } catch (e) {
      if (e instanceof client.AuthorizationResponseError) throw new OidcLoginError('provider-refused', `the provider answered ${e.error}`);
      throw new OidcLoginError('response-invalid', describeFailure(e));
    }
    const r = identityFromClaims(claims, this.config);
    if (!r.ok) throw new OidcLoginError('no-role', r.reason, r.name);
    return r.identity;
  }

  /**
   * The Bearer verifier: null for a token that is not a JWT (a local API token); any JWT is
   * taken as this provider's access token and refused (ApiError) unless it verifies.
   */
  async verifyBearer(token: string): Promise<Identity | null> {
    if (!looksLikeJwt(token)) return null;
    if (!this.discovered) throw new ApiError('API_UNAVAILABLE', 'single sign-on is not available now: the identity provider has not answered');
    const d = this.discovered;
    const payload = await verifyAccessToken(token, d.keys, {
      issuer: d.issuer,
      audience: this.config.audience ?? this.config.client_id,
      algorithms: this.config.algorithms,
      clockToleranceSec: this.config.clock_tolerance.ms / 1000,
    });
    const r = identityFromClaims(payload, this.config, payload.exp! * 1000);
    if (!r.ok) throw new ApiError('API_FORBIDDEN', `the token is accepted but gives no access: ${r.reason}`);
    return r.identity;
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.pending.clear();
  }
}

/** The client secret file: refused (KeyFileError) when group or others may read it. */
export function readClientSecret(file: string): string {
  let text: string;
  try {
    assertPrivateKeyFile('auth.oidc.client_secret_file', file);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof KeyFileError) throw e;
    throw new TallenneError('TALLENNE_CONFIG_INVALID', `auth.oidc.client_secret_file: ${(e as Error).message}`, { cause: e });
  }
  const secret = text.trim();
  if (secret === '') throw new TallenneError('TALLENNE_CONFIG_INVALID', `auth.oidc.client_secret_file ${file} is empty`);
  return secret;
}

/** A failure as one short line without personal data: error codes and causes, no payloads. */
function describeFailure(e: unknown): string {
  if (!(e instanceof Error)) return 'unknown error';
  const cause = e.cause as { code?: unknown; message?: unknown } | undefined;
  const code = (e as { code?: unknown }).code;
  const parts = [typeof code === 'string' ? code : e.name, e.message.slice(0, 200)];
  if (cause && typeof cause.code === 'string') parts.push(cause.code);
  return parts.join(': ');
}
