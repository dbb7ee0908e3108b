/**
 * What the API's route plugins get: the one object the server is built from. Plugins
 * (recordings, audio, exports, sessions, OIDC, the web page) receive it as their options.
 */
import type { Config } from '../config/schema.js';
import type { RecordingIndex } from '../index/index.js';
import type { Logger } from '../log.js';
import type { NumberHasher } from '../privacy/numbers.js';
import type { AudioStore } from '../storage/audio-store.js';
import type { ApiAudit } from './audit.js';
import type { Authenticator } from './auth/authenticate.js';
import type { SessionStore } from './auth/session.js';
import type { OidcClient } from './auth/oidc.js';
import type { PeakCache } from './peaks.js';
import type { LiveCalls } from '../calls/live.js';
import type { ListenTracker, LiveListens } from './listens.js';

export interface ApiDeps {
  /** The config in force (it changes on SIGHUP: read it per request). */
  readonly config: () => Config;
  readonly index: RecordingIndex;
  readonly store: AudioStore;
  /** For the `number` filter (subject search) and rectifying a customer number. */
  readonly hasher: NumberHasher;
  readonly log: Logger;
  readonly sessions: SessionStore;
  /** Call `auth.registerBearerVerifier(fn)` to accept another kind of bearer token. */
  readonly auth: Authenticator;
  readonly audit: ApiAudit;
  readonly peaks: PeakCache;
  /** Single sign-on, when `[auth.oidc]` is configured (routes and bearer verifier: auth/oidc-routes.ts). */
  readonly oidc?: OidcClient;
  /** The calls in progress (absent where no call manager runs, e.g. API tests without SIP). */
  readonly calls?: LiveCalls;
  /** Starts live listens on the encoder threads (absent with no call manager). */
  readonly listen?: LiveListens;
  readonly listens: ListenTracker;
  readonly now: () => number;
}
