/**
 * A real OpenID Connect provider (`oidc-provider`) for tests, on 127.0.0.1 with an ephemeral
 * port (or a port reserved beforehand). It signs with its own fresh RSA key, logs users in
 * through its own small login page (name and password, no outside resources; consent is
 * given automatically, as for a first-party application), and carries each test account's
 * tallenne roles, teams and agent id as claims, in the ID token (scope "tallenne") and in its
 * access tokens, which are JWTs for the API's audience (resource indicators). A "service"
 * client gets such access tokens by the client-credentials grant.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

export interface TestAccount {
  readonly roles?: readonly string[];
  readonly teams?: readonly string[];
  readonly agentId?: string;
}

export interface TestUser extends TestAccount {
  readonly password: string;
}

export interface TestProviderOptions {
  /** Login name → password and claims. */
  readonly accounts: Readonly<Record<string, TestUser>>;
  /** The web client (tallenne's page login). */
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUri: string;
  /** The API's audience: the `aud` of every access token. */
  readonly audience: string;
  /** Claims of the client-credentials client "service". */
  readonly service?: TestAccount;
  /** Listen on this port (reserved with freePort()); default: an ephemeral one. */
  readonly port?: number;
}

export interface TestProvider {
  readonly issuer: string;
  readonly port: number;
  /** The client-credentials client's id and secret. */
  readonly service: { readonly clientId: string; readonly clientSecret: string };
  /** An access token for the "service" client, by the client-credentials grant. */
  serviceAccessToken(): Promise<string>;
  close(): Promise<void>;
}

export const SERVICE_CLIENT_ID = 'service';

/** A free TCP port on 127.0.0.1 (for a listener whose URL must be known before it starts). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function tallenneClaims(a: TestAccount | undefined): Record<string, unknown> {
  if (!a) return {};
  return {
    ...(a.roles ? { roles: [...a.roles] } : {}),
    ...(a.teams ? { teams: [...a.teams] } : {}),
    ...(a.agentId ? { agent_id: a.agentId } : {}),
  };
}

export async function startOidcProvider(opts: TestProviderOptions): Promise<TestProvider> {
  // Everything asynchronous happens before listening: once the port is open the provider
  // is attached in the same tick, so no request finds a server without a handler.
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };
  const serviceSecret = randomBytes(24).toString('base64url');
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: opts.clientId,
        client_secret: opts.clientSecret,
        redirect_uris: [opts.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
      {
        client_id: SERVICE_CLIENT_ID,
        client_secret: serviceSecret,
        redirect_uris: [],
        grant_types: ['client_credentials'],
        response_types: [],
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    ttl: { AccessToken: 600, AuthorizationCode: 60, ClientCredentials: 600, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
    scopes: ['openid', 'profile', 'tallenne', 'recordings'],
    claims: { openid: ['sub'], profile: ['preferred_username'], tallenne: ['roles', 'teams', 'agent_id'] },
    // The claims of the granted scopes go into the ID token as well (not only userinfo).
    conformIdTokenClaims: false,
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = opts.accounts[sub];
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, preferred_username: sub, ...tallenneClaims(account) }) };
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => opts.audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: 'recordings',
          audience: opts.audience,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: async (_ctx: unknown, token: { kind: string; accountId?: string; clientId?: string }) => {
      if (token.kind === 'AccessToken' && token.accountId) return tallenneClaims(opts.accounts[token.accountId]);
      if (token.kind === 'ClientCredentials' && token.clientId === SERVICE_CLIENT_ID) return tallenneClaims(opts.service);
      return undefined;
    },
  });
  const providerHandler = provider.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if ((req.url ?? '').startsWith('/interaction/')) {
      interaction(provider, opts.accounts, req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${(e as Error).message}`);
      });
      return;
    }
    providerHandler(req, res);
  });

  return {
    issuer,
    port,
    service: { clientId: SERVICE_CLIENT_ID, clientSecret: serviceSecret },
    async serviceAccessToken() {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${SERVICE_CLIENT_ID}:${serviceSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'recordings', resource: opts.audience }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!res.ok || !body.access_token) throw new Error(`client-credentials grant failed: ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`);
      return body.access_token;
    },
    async close() {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * The provider's interaction pages: GET shows the login form (or grants consent at once),
 * POST checks the name and password and finishes the login.
 */
async function interaction(provider: Provider, accounts: Readonly<Record<string, TestUser>>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get('login') ?? '';
    const account = Object.hasOwn(accounts, login) ? accounts[login] : undefined;
    if (!account || form.get('password') !== account.password) return loginPage(res, details.uid, 'Wrong name or password.');
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }
  if (details.prompt.name === 'login') return loginPage(res, details.uid);
  if (details.prompt.name === 'consent') {
    const missing = details.prompt.details;
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id as string });
    if (!grant) throw new Error('the grant of this interaction is gone');
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }
  res.writeHead(501, { 'content-type': 'text/plain' });
  res.end(`prompt ${details.prompt.name} is not handled`);
}

function loginPage(res: ServerResponse, uid: string, problem?: string): void {
  res.writeHead(problem ? 401 : 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head><body>
<h1>Sign in</h1>${problem ? `<p role="alert">${problem}</p>` : ''}
<form method="post" action="/interaction/${encodeURIComponent(uid)}">
<label>Name <input name="login" autocomplete="off" required></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign in</button>
</form></body></html>`);
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 8192) throw new Error('form too large');
  }
  return body;
}
