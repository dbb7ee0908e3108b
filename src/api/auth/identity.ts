/**
 * Who is calling: the one shape every way of logging in produces (a local API token, the
 * page's session cookie, an OpenID Connect access token or login). The access policy
 * (src/access/) decides on this and nothing else.
 */
import type { AccessRole } from '../../access/roles.js';

export interface Identity {
  /** The user name (local users) or the subject's preferred name (OIDC). Never a phone number. */
  readonly name: string;
  readonly roles: readonly AccessRole[];
  /** The `[[agents]] id` this person records calls as (scope of the `agent` role). */
  readonly agentId?: string;
  /**
   * Teams in scope for the `supervisor` role: the user's own `--team`s; the server adds the
   * `team` and `supervisor_of` of the user's `[[agents]]` entry (see scopeOf in src/access/).
   */
  readonly teams: readonly string[];
  /** How the caller proved who they are. */
  readonly via: 'token' | 'session' | 'oidc';
  /** The local API token used (never the token itself). */
  readonly tokenId?: string;
  /** Epoch ms after which this identity is no longer valid (user or token expiry, OIDC exp). */
  readonly expiresAt?: number;
}

/**
 * Turns a bearer token into an identity, or null when the token is not one this verifier
 * knows (the next verifier is tried). Throws ApiError('AUTH_INVALID_TOKEN' | ...) when the
 * token is recognisably its own but bad (expired, revoked, bad signature): no other verifier
 * is tried then.
 */
export type BearerVerifier = (token: string) => Promise<Identity | null>;
