/**
 * A real third-party OpenID Provider (npm `oidc-provider` v9) on a free port of 127.0.0.1, used
 * as "some other company's IdP" that mintgate trusts as an OIDC issuer.
 *
 * One confidential client (`mintgate-test-client`, `client_secret_basic`) may use the
 * `client_credentials` grant. With RFC 8707 resource indicators every access token is a JWT
 * (RFC 9068) signed RS256 by a key generated here and published at the discovered `jwks_uri`.
 *
 * What a token looks like (`getToken()` with defaults):
 *
 *   header  {"alg":"RS256","typ":"at+jwt","kid":"<RFC 7638 thumbprint>"}
 *   payload {"jti":"<43-char nanoid>","sub":"mintgate-test-client","iat":N,"exp":N+300,
 *            "client_id":"mintgate-test-client","iss":"http://127.0.0.1:PORT","aud":"mintgate"}
 *   plus    "scope":"models:read" when a scope the resource server knows was requested.
 *
 * `sub` equals `client_id` (no end user in client credentials); there is no `nbf`; `aud` is one
 * string. `typ` is `at+jwt`, not `JWT`: a verifier that pins `typ: 'JWT'` for OIDC issuers
 * refuses these.
 *
 * oidc-provider quirks this helper absorbs:
 * - A JWT access token needs a resource indicator: without `resource` the token is opaque.
 * - `resource` must be an absolute URI (`URL.parse` must accept it; `urn:mintgate` passes,
 *   bare `mintgate` is `invalid_target`) with no fragment, and only one per request for this grant.
 * - The token's `aud` is the resource server's `audience` if `getResourceServerInfo` sets one,
 *   else the resource URI itself. To get a bare-string `aud` such as `mintgate`, `getToken`
 *   sends the resource `urn:mintgate-test:audience:<encoded audience>` and the resource server
 *   info maps it back to that audience.
 * - Requested scopes are silently narrowed to the resource server's `scope` list; unknown ones
 *   vanish instead of failing.
 * - v9 prints "Unsupported runtime" on Node 20 at import; it works, and the notice is filtered.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';

import { calculateJwkThumbprint, type JWK } from 'jose';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Prefix of the resource URIs that stand for a bare-string audience (see the file comment). */
const AUDIENCE_URN_PREFIX = 'urn:mintgate-test:audience:';

/** Options for {@link startOidcProvider}. */
export interface OidcProviderOptions {
  /** Scopes every resource server accepts; default `['models:read', 'models:write']`. */
  scopes?: string[];
  /** Access-token lifetime in seconds; default 300. */
  accessTokenTTL?: number;
}

/** Options for {@link RunningOidcProvider.getToken}. */
export interface GetTokenOptions {
  /**
   * RFC 8707 resource (an absolute URI, e.g. `urn:mintgate` or `https://api.example`); becomes
   * `aud` verbatim. Takes precedence over `audience`.
   */
  resource?: string;
  /** Any string to become `aud` (default `mintgate`), sent via the audience URN mapping. */
  audience?: string;
  /** Space-delimited scopes to request; only those in the provider's scope list survive. */
  scope?: string;
}

/** The token endpoint's JSON answer (RFC 6749 section 5.1). */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
}

/** A running oidc-provider. */
export interface RunningOidcProvider {
  /** Issuer identifier, `http://127.0.0.1:PORT` (no trailing slash). */
  readonly issuer: string;
  /** From discovery. */
  readonly tokenEndpoint: string;
  /** From discovery. */
  readonly jwksUri: string;
  /** The one registered client; also every token's `sub` and `client_id`. */
  readonly clientId: string;
  readonly clientSecret: string;
  /** Runs the client credentials grant over HTTP and returns the JWT access token. */
  getToken(opts?: GetTokenOptions): Promise<string>;
  /** Same as {@link RunningOidcProvider.getToken} but returns the whole token response. */
  getTokenResponse(opts?: GetTokenOptions): Promise<TokenResponse>;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

// The package ships no types; only what this file touches is described.
interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  silent?: boolean;
}
type ProviderConstructor = new (issuer: string, configuration: object) => ProviderInstance;

let providerModule: Promise<ProviderConstructor> | undefined;

function loadProvider(): Promise<ProviderConstructor> {
  providerModule ??= (async () => {
    // A non-literal specifier types the import as `any`: there is no declaration file to find.
    const specifier: string = 'oidc-provider';
    const warn = console.warn;
    // v9 warns once at import on Node 20 (it wants 22 LTS); everything used here works, so the
    // notice is dropped instead of cluttering every test run. Other warnings pass through.
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
      warn(...args);
    };
    try {
      const mod = (await import(specifier)) as { default: ProviderConstructor };
      return mod.default;
    } finally {
      console.warn = warn;
    }
  })();
  return providerModule;
}

interface StoredEntry {
  payload: Record<string, unknown>;
  expiresAt: number;
}

/**
 * oidc-provider's storage contract, kept in one Map per provider. Supplying it (rather than
 * the built-in dev adapter) also silences the "development-only adapter" warning.
 */
function memoryAdapter(): new (model: string) => object {
  const store = new Map<string, StoredEntry>();
  const live = (key: string): Record<string, unknown> | undefined => {
    const entry = store.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  const findBy = (model: string, field: string, value: unknown): Record<string, unknown> | undefined => {
    for (const key of store.keys()) {
      const payload = key.startsWith(`${model}:`) ? live(key) : undefined;
      if (payload?.[field] === value) return payload;
    }
    return undefined;
  };
  return class MemoryAdapter {
    readonly #model: string;
    constructor(model: string) {
      this.#model = model;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
      store.set(`${this.#model}:${id}`, { payload, expiresAt });
    }
    async find(id: string): Promise<Record<string, unknown> | undefined> {
      return live(`${this.#model}:${id}`);
    }
    async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      return findBy(this.#model, 'uid', uid);
    }
    async findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined> {
      return findBy(this.#model, 'userCode', userCode);
    }
    async consume(id: string): Promise<void> {
      const payload = live(`${this.#model}:${id}`);
      if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(`${this.#model}:${id}`);
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [key, entry] of store) if (entry.payload.grantId === grantId) store.delete(key);
    }
  };
}

/**
 * Starts oidc-provider on a free port of 127.0.0.1 with a fresh RS256 key and one
 * client-credentials client, and reads its discovery document.
 *
 * @example
 * const op = await startOidcProvider();
 * const jwt = await op.getToken({ scope: 'models:read' }); // aud "mintgate"
 * await op.close();
 */
export async function startOidcProvider(opts: OidcProviderOptions = {}): Promise<RunningOidcProvider> {
  const Provider = await loadProvider();
  const scopes = opts.scopes ?? ['models:read', 'models:write'];
  const accessTokenTTL = opts.accessTokenTTL ?? 300;
  const clientId = 'mintgate-test-client';
  const clientSecret = randomBytes(24).toString('base64url');

  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const privateJwk = privateKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(privateJwk);

  // Listen first, so the issuer (which must contain the port) is known before the provider is
  // built; requests before then cannot happen because nobody knows the port yet.
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (handler === undefined) {
      res.writeHead(503).end();
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    adapter: memoryAdapter(),
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [{ ...privateJwk, kid, alg: 'RS256', use: 'sig' }] },
    // Set explicitly: the default TTL function prints a notice each time it runs.
    ttl: { ClientCredentials: accessTokenTTL },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        async getResourceServerInfo(_ctx: unknown, resourceIndicator: string) {
          const audience = resourceIndicator.startsWith(AUDIENCE_URN_PREFIX)
            ? decodeURIComponent(resourceIndicator.slice(AUDIENCE_URN_PREFIX.length))
            : undefined;
          return {
            scope: scopes.join(' '),
            ...(audience === undefined ? {} : { audience }),
            accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  // Koa would print unhandled errors; oidc-provider already turns them into responses.
  provider.silent = true;
  // Kept so a failed getToken can say why the provider answered server_error.
  let lastServerError: unknown;
  provider.on('server_error', (_ctx: unknown, err: unknown) => {
    lastServerError = err;
  });
  handler = provider.callback();

  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
    token_endpoint: string;
    jwks_uri: string;
  };

  async function getTokenResponse(tokenOpts: GetTokenOptions = {}): Promise<TokenResponse> {
    const resource = tokenOpts.resource ?? AUDIENCE_URN_PREFIX + encodeURIComponent(tokenOpts.audience ?? 'mintgate');
    const form = new URLSearchParams({ grant_type: 'client_credentials', resource });
    if (tokenOpts.scope !== undefined) form.set('scope', tokenOpts.scope);
    // RFC 6749 section 2.3.1: id and secret are form-encoded before base64.
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
    lastServerError = undefined;
    const res = await fetch(discovery.token_endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    const text = await res.text();
    if (res.status !== 200) {
      const detail = lastServerError instanceof Error ? ` (${lastServerError.message})` : '';
      throw new Error(`oidc-provider token endpoint answered ${res.status}: ${text}${detail}`);
    }
    return JSON.parse(text) as TokenResponse;
  }

  return {
    issuer,
    tokenEndpoint: discovery.token_endpoint,
    jwksUri: discovery.jwks_uri,
    clientId,
    clientSecret,
    getTokenResponse,
    async getToken(tokenOpts) {
      return (await getTokenResponse(tokenOpts)).access_token;
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
