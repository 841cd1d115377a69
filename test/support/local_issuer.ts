/**
 * A local OIDC issuer for tests: discovery, JWKS and workload-token minting on 127.0.0.1.
 *
 * It stands in for GitHub Actions, GitLab CI and a Kubernetes API server (SPEC.md section 5) and
 * can misbehave on demand (outage, redirect, slow or giant JWKS, key rotation), so broker and
 * proxy tests exercise real HTTP fetching and real signatures instead of mocks.
 *
 * Claim-override rule used by `sign`, `github`, `gitlab` and `kubernetes`: a claim given as
 * `null` or `undefined` is left out of the token (also a default such as `jti` or `exp`); nested
 * objects (`kubernetes.io`) merge key by key; anything else replaces the default. To put a
 * literal `null` or a wrongly typed value into a token, use `rawSign`.
 */
import { createHash, createHmac, generateKeyPair, randomUUID, sign as cryptoSign, constants, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';

import { CompactSign, calculateJwkThumbprint, type JWK } from 'jose';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Signature algorithms the local issuer can hold keys for. */
export type LocalIssuerAlg = 'RS256' | 'ES256';

/** Options for {@link startLocalIssuer}. */
export interface LocalIssuerOptions {
  /** Key type and `alg` of every key, default `RS256` (what GitHub, GitLab and Kubernetes use). */
  alg?: LocalIssuerAlg;
  /**
   * Path prefix of the issuer, e.g. `/_services/token` for a GHES-style issuer. Default: none,
   * so `issuer` is `http://127.0.0.1:PORT`.
   */
  path?: string;
  /** Clock in milliseconds since the epoch, used for `iat`/`nbf`/`exp` defaults. Default `Date.now`. */
  clock?: () => number;
}

/** Header or payload object; `null`/`undefined` members are dropped (see the file comment). */
export type ClaimSet = Record<string, unknown>;

/** Overrides for one workload token: typed known claims, plus anything else. */
export type ClaimOverrides<T> = { [K in keyof T]?: T[K] | null } & ClaimSet;

/** Options for the workload-token helpers. */
export interface TokenOptions {
  /** Header members merged over `{alg, kid, typ}`; `undefined` removes one (e.g. `typ`). */
  header?: ClaimSet;
}

/** Claims of a GitHub Actions OIDC token. Every custom claim is a string, as GitHub sends them. */
export interface GitHubClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  actor: string;
  actor_id: string;
  base_ref: string;
  head_ref: string;
  event_name: string;
  ref: string;
  ref_type: string;
  ref_protected: string;
  sha: string;
  repository: string;
  repository_id: string;
  repository_owner: string;
  repository_owner_id: string;
  repository_visibility: string;
  enterprise: string;
  enterprise_id: string;
  environment: string;
  run_id: string;
  run_number: string;
  run_attempt: string;
  runner_environment: string;
  workflow: string;
  workflow_ref: string;
  workflow_sha: string;
  job_workflow_ref: string;
  job_workflow_sha: string;
}

/** Claims of a GitLab CI `id_tokens` token. IDs are strings except `runner_id`, as GitLab sends them. */
export interface GitLabClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  namespace_id: string;
  namespace_path: string;
  project_id: string;
  project_path: string;
  project_visibility: string;
  user_id: string;
  user_login: string;
  user_email: string;
  user_access_level: string;
  pipeline_id: string;
  pipeline_source: string;
  job_id: string;
  ref: string;
  ref_type: string;
  ref_path: string;
  ref_protected: string;
  sha: string;
  environment: string;
  environment_protected: string;
  deployment_tier: string;
  runner_id: number;
  runner_environment: string;
  ci_config_ref_uri: string;
  ci_config_sha: string;
}

/** An object reference inside the `kubernetes.io` claim. */
export interface KubernetesObjectRef {
  name: string;
  uid: string;
}

/** The nested `kubernetes.io` claim of a projected service-account token. */
export interface KubernetesIoClaim {
  namespace: string;
  serviceaccount: KubernetesObjectRef;
  pod: KubernetesObjectRef;
  node: KubernetesObjectRef;
  secret: KubernetesObjectRef;
  warnafter: number;
}

/** Claims of a Kubernetes projected service-account token. */
export interface KubernetesClaims {
  iss: string;
  sub: string;
  aud: string[];
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  'kubernetes.io': KubernetesIoClaim;
}

/** Overrides for {@link LocalIssuer.kubernetes}: `kubernetes.io` and its objects merge key by key. */
export type KubernetesOverrides = Omit<ClaimOverrides<KubernetesClaims>, 'kubernetes.io'> & {
  'kubernetes.io'?: {
    [K in keyof KubernetesIoClaim]?: KubernetesIoClaim[K] extends object
      ? Partial<KubernetesIoClaim[K]> | null
      : KubernetesIoClaim[K] | null;
  } & ClaimSet;
};

/**
 * How {@link LocalIssuer.rawSign} produces the signature segment.
 * - `'rsa'` / `'key'`: the issuer's current private key (RSA or EC, whichever it holds), with
 *   the header's `alg` when that algorithm fits the key (`RS*`/`PS*` for RSA, `ES256` for P-256),
 *   else the key's own algorithm. So `{alg: 'none'}` + `'rsa'` is a none-header token carrying a
 *   real RS256 signature, and `{alg: 'RS512'}` is a validly signed token in a non-allowed alg.
 * - `'none'`: empty signature (`header.payload.`).
 * - `{hmacSecret}`: HMAC with the header's `HS256`/`HS384`/`HS512` (default SHA-256); pass
 *   `Buffer.from(issuer.publicPem())` for the RS/HS confusion attack.
 * - `{zeroSignature: n}`: `n` zero bytes (64 = ES256 r=s=0, CVE-2022-21449).
 * - `{raw}`: exactly these signature bytes.
 * - `{privateKey}`: an attacker's own key (for embedded `jwk`/`x5c`/`jku` tests), with the
 *   header's `alg` (RS*, PS* or ES256).
 */
export type RawSigner =
  | 'rsa'
  | 'key'
  | 'none'
  | { hmacSecret: Uint8Array }
  | { zeroSignature: number }
  | { raw: Uint8Array }
  | { privateKey: KeyObject };

/** A running local issuer. All URLs are on 127.0.0.1. */
export interface LocalIssuer {
  /** Issuer identifier, `http://127.0.0.1:PORT` plus the optional path prefix; no trailing slash. */
  readonly issuer: string;
  /** The TCP port it listens on. */
  readonly port: number;
  /** `kid` of the current signing key. */
  readonly kid: string;
  /** `alg` of every key. */
  readonly alg: LocalIssuerAlg;
  /** `{issuer}/.well-known/openid-configuration`. */
  readonly discoveryUrl: string;
  /** `{issuer}/.well-known/jwks` (GitHub's path); the discovery `jwks_uri`. */
  readonly jwksUri: string;
  /** `{issuer}/openid/v1/jwks` (Kubernetes' path); same keys. */
  readonly kubernetesJwksUri: string;
  /**
   * Requests received since start (counted before outage, delay or redirect apply). Both JWKS
   * paths count as `jwks`. Writable, so a test may reset them to 0.
   */
  readonly fetches: { discovery: number; jwks: number };
  /**
   * Signs `payload` as a JWT with the current key (via jose). Header defaults
   * `{alg, typ: 'JWT', kid}`; `iss` (this issuer), `iat`/`nbf` (now), `exp` (now + 300 s) and
   * `jti` (random UUID) are added unless given; `null`/`undefined` leaves one out.
   * jose refuses `crit` and `b64`; use {@link LocalIssuer.rawSign} for those.
   */
  sign(payload: ClaimSet, header?: ClaimSet): Promise<string>;
  /**
   * A GitHub Actions token: `sub` `repo:acme/models:ref:refs/heads/main`, `aud` `mintgate`,
   * every custom claim a string, lifetime 300 s. `sub` is derived from the merged `repository`,
   * `environment`, `event_name` and `ref` unless given.
   */
  github(claims?: ClaimOverrides<GitHubClaims>, opts?: TokenOptions): Promise<string>;
  /**
   * A GitLab CI token: `sub` `project_path:acme/models:ref_type:branch:ref:main`, `aud`
   * `mintgate`, lifetime 300 s. `sub` is derived from the merged `project_path`, `ref_type` and
   * `ref` unless given.
   */
  gitlab(claims?: ClaimOverrides<GitLabClaims>, opts?: TokenOptions): Promise<string>;
  /**
   * A Kubernetes projected service-account token: `aud` `['mintgate']`, `sub`
   * `system:serviceaccount:ml:trainer`, nested `kubernetes.io`, lifetime 3600 s (the kubelet
   * default), header `{alg, kid}` without `typ` as the API server sends it. `sub` is derived from
   * the merged namespace and service account unless given.
   */
  kubernetes(claims?: KubernetesOverrides, opts?: TokenOptions): Promise<string>;
  /**
   * Builds a compact JWS by hand, for attack tests: nothing is added to `header` or `payload`.
   * A string header or payload is used verbatim (duplicate keys, odd whitespace, deep JSON). An
   * object header with `b64: false` gets the RFC 7797 signing input and the payload unencoded in
   * the middle segment (so the payload must not contain `.`).
   */
  rawSign(header: ClaimSet | string, payload: ClaimSet | string, signer: RawSigner): Promise<string>;
  /** SPKI PEM of the current public key (the RS/HS confusion secret). */
  publicPem(): string;
  /** The published JWK Set `{keys: [...]}` (a copy), old keys included. */
  jwks(): { keys: JWK[] };
  /** Adds a key, publishes it and makes it current (old keys stay published); returns its kid. */
  rotate(): Promise<string>;
  /** Unpublishes every key but the current one. */
  dropOldKeys(): void;
  /** While true, every endpoint answers 503 (IdP outage). */
  setDown(down: boolean): void;
  /** Replaces the JWKS response body on both JWKS paths (giant or malformed JWKS); null restores it. */
  setJwksBody(body: string | null): void;
  /** Makes discovery and JWKS answer `302 Location: url`; null restores them. */
  setRedirect(url: string | null): void;
  /** Delays every response by `ms` milliseconds (0 = none). */
  setDelay(ms: number): void;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

interface IssuerKey {
  kid: string;
  alg: LocalIssuerAlg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: JWK;
}

const GITHUB_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4';
const GITLAB_SHA = '5f2c8b1e9a7d4c3b2a1f0e9d8c7b6a5f4e3d2c1b';

/**
 * Starts a local issuer on a free port of 127.0.0.1 with one fresh key.
 *
 * @example
 * const idp = await startLocalIssuer();
 * const jwt = await idp.github({ ref: 'refs/heads/dev' });
 * await idp.close();
 */
export async function startLocalIssuer(opts: LocalIssuerOptions = {}): Promise<LocalIssuer> {
  const alg = opts.alg ?? 'RS256';
  const clock = opts.clock ?? Date.now;
  const prefix = normalisePrefix(opts.path);

  let keys: IssuerKey[] = [await newKey(alg)];
  let current = keys[0] as IssuerKey;
  let down = false;
  let jwksBody: string | null = null;
  let redirect: string | null = null;
  let delayMs = 0;
  const fetches = { discovery: 0, jwks: 0 };
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      // A handler error is a bug in this helper; answer rather than leave the client hanging.
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}${prefix}`;
  const discoveryUrl = `${issuer}/.well-known/openid-configuration`;
  const jwksUri = `${issuer}/.well-known/jwks`;
  const kubernetesJwksUri = `${issuer}/openid/v1/jwks`;

  function publishedJwks(): { keys: JWK[] } {
    return { keys: keys.map((k) => structuredClone(k.jwk)) };
  }

  function discovery(): object {
    // Shaped like GitHub's document: the fields an RP needs to find and use the keys.
    return {
      issuer,
      jwks_uri: jwksUri,
      subject_types_supported: ['public', 'pairwise'],
      response_types_supported: ['id_token'],
      id_token_signing_alg_values_supported: [alg],
      scopes_supported: ['openid'],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf'],
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const route = path.startsWith(prefix) ? path.slice(prefix.length) : null;
    const kind =
      route === '/.well-known/openid-configuration'
        ? 'discovery'
        : route === '/.well-known/jwks' || route === '/openid/v1/jwks'
          ? 'jwks'
          : null;
    if (kind !== null) fetches[kind] += 1;

    if (delayMs > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          timers.delete(t);
          resolve();
        }, delayMs);
        timers.add(t);
      });
      if (res.destroyed) return;
    }
    if (down) return send(res, 503, 'text/plain', 'Service Unavailable');
    if (kind === null) return send(res, 404, 'text/plain', 'Not Found');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'Method Not Allowed');
    if (redirect !== null) {
      res.writeHead(302, { location: redirect, 'content-length': '0' });
      res.end();
      return;
    }
    if (kind === 'discovery') return send(res, 200, 'application/json', JSON.stringify(discovery()));
    return send(res, 200, 'application/json', jwksBody ?? JSON.stringify(publishedJwks()));
  }

  async function sign(payload: ClaimSet, header: ClaimSet = {}): Promise<string> {
    const now = Math.floor(clock() / 1000);
    const body = withDefaults(payload, { iss: issuer, iat: now, nbf: now, exp: now + 300, jti: randomUUID() });
    const protectedHeader = dropAbsent({ alg: current.alg, typ: 'JWT', kid: current.kid, ...header });
    return new CompactSign(new TextEncoder().encode(JSON.stringify(body)))
      .setProtectedHeader(protectedHeader as { alg: string })
      .sign(current.privateKey);
  }

  return {
    issuer,
    port,
    get kid() {
      return current.kid;
    },
    alg,
    discoveryUrl,
    jwksUri,
    kubernetesJwksUri,
    fetches,
    sign,

    github(claims = {}, tokenOpts = {}) {
      const merged = merge(githubDefaults(), claims);
      if (!('sub' in claims)) merged.sub = githubSubject(merged);
      return sign(merged, tokenOpts.header);
    },

    gitlab(claims = {}, tokenOpts = {}) {
      const merged = merge(gitlabDefaults(), claims);
      if (!('sub' in claims)) {
        merged.sub = `project_path:${String(merged.project_path)}:ref_type:${String(merged.ref_type)}:ref:${String(merged.ref)}`;
      }
      return sign(merged, tokenOpts.header);
    },

    kubernetes(claims = {}, tokenOpts = {}) {
      const now = Math.floor(clock() / 1000);
      const merged = merge(kubernetesDefaults(now), claims);
      if (!('sub' in claims)) {
        const k8s = (merged['kubernetes.io'] ?? {}) as Partial<KubernetesIoClaim>;
        merged.sub = `system:serviceaccount:${String(k8s.namespace)}:${String(k8s.serviceaccount?.name)}`;
      }
      // The API server sends `{alg, kid}` only; a verifier that insists on typ must cope.
      return sign(merged, { typ: undefined, ...tokenOpts.header });
    },

    async rawSign(header, payload, signer) {
      const headerText = typeof header === 'string' ? header : JSON.stringify(header);
      const payloadText = typeof payload === 'string' ? payload : JSON.stringify(payload);
      const encodedHeader = b64u(Buffer.from(headerText, 'utf8'));
      // RFC 7797 section 3: with b64=false the payload is signed, and carried, as is.
      const unencoded = typeof header !== 'string' && header.b64 === false;
      let payloadSegment: string;
      let signingInput: Buffer;
      if (unencoded) {
        if (payloadText.includes('.')) {
          throw new TypeError('rawSign: a b64=false compact JWS cannot carry a payload containing "." (RFC 7797 section 5.2)');
        }
        payloadSegment = payloadText;
        signingInput = Buffer.concat([Buffer.from(`${encodedHeader}.`, 'ascii'), Buffer.from(payloadText, 'utf8')]);
      } else {
        payloadSegment = b64u(Buffer.from(payloadText, 'utf8'));
        signingInput = Buffer.from(`${encodedHeader}.${payloadSegment}`, 'ascii');
      }
      const headerAlg = typeof header === 'string' ? headerAlgOf(header) : header.alg;
      const signature = rawSignature(signer, signingInput, typeof headerAlg === 'string' ? headerAlg : undefined, current);
      return `${encodedHeader}.${payloadSegment}.${b64u(signature)}`;
    },

    publicPem() {
      return current.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    },

    jwks: publishedJwks,

    async rotate() {
      const key = await newKey(alg);
      keys.push(key);
      current = key;
      return key.kid;
    },

    dropOldKeys() {
      keys = [current];
    },

    setDown(value) {
      down = value;
    },

    setJwksBody(body) {
      jwksBody = body;
    },

    setRedirect(url) {
      redirect = url;
    },

    setDelay(ms) {
      delayMs = ms;
    },

    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets (undici's pool) would otherwise hold close() open.
        server.closeAllConnections();
      });
    },
  };

  function githubDefaults(): ClaimSet {
    return {
      aud: 'mintgate',
      ref: 'refs/heads/main',
      sha: GITHUB_SHA,
      repository: 'acme/models',
      repository_owner: 'acme',
      actor_id: '1001',
      repository_visibility: 'private',
      repository_id: '2002',
      repository_owner_id: '3003',
      run_id: '4004',
      run_number: '42',
      run_attempt: '1',
      runner_environment: 'github-hosted',
      actor: 'octocat',
      workflow: 'train',
      head_ref: '',
      base_ref: '',
      event_name: 'push',
      ref_protected: 'true',
      ref_type: 'branch',
      workflow_ref: 'acme/models/.github/workflows/train.yml@refs/heads/main',
      workflow_sha: GITHUB_SHA,
      job_workflow_ref: 'acme/models/.github/workflows/train.yml@refs/heads/main',
      job_workflow_sha: GITHUB_SHA,
      enterprise: 'acme-corp',
      enterprise_id: '5005',
    };
  }

  function gitlabDefaults(): ClaimSet {
    return {
      aud: 'mintgate',
      namespace_id: '1001',
      namespace_path: 'acme',
      project_id: '2002',
      project_path: 'acme/models',
      project_visibility: 'private',
      user_id: '3003',
      user_login: 'alice',
      user_email: 'alice@acme.example',
      user_access_level: 'developer',
      pipeline_id: '4004',
      pipeline_source: 'push',
      job_id: '5005',
      ref: 'main',
      ref_type: 'branch',
      ref_path: 'refs/heads/main',
      ref_protected: 'true',
      sha: GITLAB_SHA,
      runner_id: 6006,
      runner_environment: 'gitlab-hosted',
      ci_config_ref_uri: 'gitlab.example.com/acme/models//.gitlab-ci.yml@refs/heads/main',
      ci_config_sha: GITLAB_SHA,
    };
  }

  function kubernetesDefaults(now: number): ClaimSet {
    return {
      aud: ['mintgate'],
      iat: now,
      nbf: now,
      exp: now + 3600,
      'kubernetes.io': {
        namespace: 'ml',
        node: { name: 'node-a', uid: '6f1d4c1e-8a3b-4f7e-9d2c-1b0a9e8d7c6b' },
        pod: { name: 'trainer-7d9f8b6c5-x2k4p', uid: '0c8e5a5e-2b7d-4a66-9f31-7d3e1c2b4a59' },
        serviceaccount: { name: 'trainer', uid: 'a3f2c1d0-5e6b-4c7a-8d9e-0f1a2b3c4d5e' },
      },
    };
  }
}

function normalisePrefix(path: string | undefined): string {
  if (path === undefined || path === '' || path === '/') return '';
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.endsWith('/') ? withSlash.slice(0, -1) : withSlash;
}

async function newKey(alg: LocalIssuerAlg): Promise<IssuerKey> {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048 })
      : await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  const bare = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(bare);
  return { kid, alg, privateKey, publicKey, jwk: { ...bare, kid, alg, use: 'sig' } };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function isPlainObject(value: unknown): value is ClaimSet {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** Drops `null`/`undefined` members at the top level. */
function dropAbsent(obj: ClaimSet): ClaimSet {
  const out: ClaimSet = {};
  for (const [k, v] of Object.entries(obj)) if (v !== null && v !== undefined) out[k] = v;
  return out;
}

/** Adds each default whose key the caller did not mention, then drops absent members. */
function withDefaults(payload: ClaimSet, defaults: ClaimSet): ClaimSet {
  const out: ClaimSet = {};
  for (const [k, v] of Object.entries(defaults)) if (!(k in payload)) out[k] = v;
  return dropAbsent({ ...out, ...payload });
}

/**
 * Merges overrides into defaults: plain objects recursively, `null`/`undefined` removes, anything
 * else replaces. Keys the caller mentions keep mentioning (so `jti: null` still reaches
 * `withDefaults` and suppresses the random jti there).
 */
function merge(defaults: ClaimSet, overrides: ClaimSet): ClaimSet {
  const out: ClaimSet = { ...defaults };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === null || v === undefined) {
      out[k] = null;
    } else if (isPlainObject(v) && isPlainObject(out[k])) {
      out[k] = nestedMerge(out[k] as ClaimSet, v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

function nestedMerge(defaults: ClaimSet, overrides: ClaimSet): ClaimSet {
  const out: ClaimSet = { ...defaults };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === null || v === undefined) delete out[k];
    else if (isPlainObject(v) && isPlainObject(out[k])) out[k] = nestedMerge(out[k] as ClaimSet, v);
    else out[k] = v;
  }
  return out;
}

/** GitHub's `sub` grammar; `:` inside a value is sent as `%3A` so the parts stay splittable. */
function githubSubject(claims: ClaimSet): string {
  const esc = (v: unknown): string => String(v).replaceAll(':', '%3A');
  const repo = esc(claims.repository);
  if (typeof claims.environment === 'string') return `repo:${repo}:environment:${esc(claims.environment)}`;
  if (claims.event_name === 'pull_request') return `repo:${repo}:pull_request`;
  return `repo:${repo}:ref:${esc(claims.ref)}`;
}

/** Best-effort `alg` of a pre-serialised header; JSON.parse keeps the last duplicate. */
function headerAlgOf(header: string): unknown {
  try {
    return (JSON.parse(header) as ClaimSet).alg;
  } catch {
    return undefined;
  }
}

function rawSignature(signer: RawSigner, input: Buffer, headerAlg: string | undefined, key: IssuerKey): Buffer {
  if (signer === 'none') return Buffer.alloc(0);
  if (signer === 'rsa' || signer === 'key') {
    return asymmetricSign(key.privateKey, fitsKey(headerAlg, key.privateKey) ? (headerAlg as string) : key.alg, input);
  }
  if ('hmacSecret' in signer) {
    const hash = headerAlg === 'HS384' ? 'sha384' : headerAlg === 'HS512' ? 'sha512' : 'sha256';
    return createHmac(hash, signer.hmacSecret).update(input).digest();
  }
  if ('zeroSignature' in signer) return Buffer.alloc(signer.zeroSignature);
  if ('raw' in signer) return Buffer.from(signer.raw);
  const fallback = signer.privateKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256';
  return asymmetricSign(signer.privateKey, fitsKey(headerAlg, signer.privateKey) ? (headerAlg as string) : fallback, input);
}

function fitsKey(alg: string | undefined, key: KeyObject): boolean {
  if (alg === undefined) return false;
  if (key.asymmetricKeyType === 'rsa') return /^(RS|PS)(256|384|512)$/.test(alg);
  if (key.asymmetricKeyType === 'ec') return alg === 'ES256' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  return false;
}

function asymmetricSign(key: KeyObject, alg: string, input: Buffer): Buffer {
  const hash = `sha${alg.slice(2)}`;
  if (alg.startsWith('PS')) {
    // RFC 7518 section 3.5: salt as long as the hash output.
    return cryptoSign(hash, input, {
      key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: createHash(hash).digest().length,
    });
  }
  if (alg.startsWith('ES')) {
    // JWS wants R||S (RFC 7518 section 3.4), not DER.
    return cryptoSign(hash, input, { key, dsaEncoding: 'ieee-p1363' });
  }
  return cryptoSign(hash, input, key);
}
