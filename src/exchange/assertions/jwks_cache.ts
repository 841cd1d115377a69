/**
 * Keys of trusted OIDC issuers: discovery, then the JWKS, cached per issuer.
 *
 * Defaults (all overridable): a fetch times out after 5 s and may carry at most 256 KiB and
 * 100 keys; keys are refreshed in the background after 10 min; an unknown `kid` triggers a
 * refetch at most once per 30 s (so a flood of made-up kids cannot turn us into a load
 * generator against the IdP); concurrent misses share one fetch; when the IdP is down, the
 * keys already fetched keep being served (stale) rather than refusing every exchange.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { createLocalJWKSet, type JWK, type JWTVerifyGetKey } from 'jose';
import { fetchJson, FetchJsonError } from './http_json.js';

export interface JwksSource {
  issuer: string;
  /** When absent, OIDC discovery at `{issuer}/.well-known/openid-configuration`. */
  jwks_uri?: string | undefined;
  /** Keys given in-process (the dev issuer); nothing is fetched. */
  static_jwks?: { keys: JWK[] } | undefined;
}

export interface JwksCacheOptions {
  timeoutMs?: number;
  maxBytes?: number;
  maxKeys?: number;
  /** Milliseconds after which fetched keys are refreshed. Default 600,000. */
  maxAgeMs?: number;
  /** Minimum milliseconds between two fetches for one issuer. Default 30,000. */
  cooldownMs?: number;
  now?: () => number;
  /** Told when a fetch fails; the message names the URL, never a token. */
  onFetchError?: (issuer: string, err: Error) => void;
  /** Told when a published key is left out of the set (private, symmetric, malformed, weak). */
  onKeyDropped?: (issuer: string, kid: string | undefined, reason: string) => void;
}

/**
 * The issuer's keys could not be had at all (never fetched successfully). `transient` tells an
 * outage (unreachable, timeout, 5xx: retry later) from a refusal (the IdP answered with a key set
 * we will not use: a redirect, a 4xx, over the size or key-count cap, not a JWK Set).
 */
export class KeysUnavailable extends Error {
  override name = 'KeysUnavailable';
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

interface IssuerKeys {
  resolver: JWTVerifyGetKey | null;
  kids: Set<string>;
  fetchedAt: number;
  lastAttempt: number;
  inflight: Promise<void> | null;
  /** Why the last fetch failed, while nothing is cached: decides 503 or refusal. */
  lastFailure: { message: string; transient: boolean } | null;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/** jose refuses RSA keys under 2048 bits at verification time (with a TypeError); drop them up front. */
const MIN_RSA_BITS = 2048;

export class JwksCache {
  private readonly issuers = new Map<string, IssuerKeys>();
  private readonly now: () => number;
  private readonly opts: Required<Omit<JwksCacheOptions, 'now' | 'onFetchError' | 'onKeyDropped'>>;
  private readonly onFetchError: (issuer: string, err: Error) => void;
  private readonly onKeyDropped: (issuer: string, kid: string | undefined, reason: string) => void;

  constructor(opts: JwksCacheOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.opts = {
      timeoutMs: opts.timeoutMs ?? 5000,
      maxBytes: opts.maxBytes ?? 256 * 1024,
      maxKeys: opts.maxKeys ?? 100,
      maxAgeMs: opts.maxAgeMs ?? 600_000,
      cooldownMs: opts.cooldownMs ?? 30_000,
    };
    this.onFetchError = opts.onFetchError ?? (() => undefined);
    this.onKeyDropped = opts.onKeyDropped ?? (() => undefined);
  }

  /**
   * A jose key resolver for this issuer. An unknown `kid` causes one cooled-down refetch;
   * if the kid is still unknown, jose's JWKSNoMatchingKey propagates (the token is refused).
   */
  async resolver(source: JwksSource): Promise<JWTVerifyGetKey> {
    const state = await this.ensure(source);
    const resolve: JWTVerifyGetKey = async (header, input) => {
      if (header.kid !== undefined && !state.kids.has(header.kid)) await this.refresh(source, state, false);
      if (!state.resolver) throw new KeysUnavailable(`no keys for ${source.issuer}`, true);
      return state.resolver(header, input);
    };
    return resolve;
  }

  private async ensure(source: JwksSource): Promise<IssuerKeys> {
    let state = this.issuers.get(source.issuer);
    if (!state) {
      state = { resolver: null, kids: new Set(), fetchedAt: 0, lastAttempt: -Infinity, inflight: null, lastFailure: null };
      this.issuers.set(source.issuer, state);
    }
    if (source.static_jwks) {
      if (!state.resolver) this.adopt(state, source.static_jwks.keys);
      return state;
    }
    if (!state.resolver) {
      await this.refresh(source, state, true);
      if (!state.resolver) {
        const failure = state.lastFailure ?? { message: 'no fetch yet', transient: true };
        throw new KeysUnavailable(`the keys of ${source.issuer} could not be fetched: ${failure.message}`, failure.transient);
      }
    } else if (this.now() - state.fetchedAt > this.opts.maxAgeMs) {
      // Old keys keep serving while the refresh runs; an outage leaves them in place (stale).
      void this.refresh(source, state, false);
    }
    return state;
  }

  /** One fetch at a time per issuer, and none within the cooldown unless nothing is cached. */
  private refresh(source: JwksSource, state: IssuerKeys, firstLoad: boolean): Promise<void> {
    if (source.static_jwks) return Promise.resolve();
    if (state.inflight) return state.inflight;
    if (!firstLoad && this.now() - state.lastAttempt < this.opts.cooldownMs) return Promise.resolve();
    if (firstLoad && state.resolver === null && this.now() - state.lastAttempt < Math.min(this.opts.cooldownMs, 1000)) {
      // An unreachable IdP is not asked again on every request; at most once a second.
      return Promise.resolve();
    }
    state.lastAttempt = this.now();
    state.inflight = this.fetchKeys(source)
      .then((keys) => {
        this.adopt(state, keys);
        state.fetchedAt = this.now();
        state.lastFailure = null;
      })
      .catch((err: Error) => {
        state.lastFailure = { message: err.message, transient: err instanceof FetchJsonError ? err.transient : true };
        this.onFetchError(source.issuer, err);
      })
      .finally(() => {
        state.inflight = null;
      });
    return state.inflight;
  }

  private adopt(state: IssuerKeys, keys: JWK[]): void {
    state.resolver = createLocalJWKSet({ keys });
    state.kids = new Set(keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
  }

  private async fetchKeys(source: JwksSource): Promise<JWK[]> {
    const limits = { timeoutMs: this.opts.timeoutMs, maxBytes: this.opts.maxBytes };
    let jwksUri = source.jwks_uri;
    if (!jwksUri) {
      const discoveryUrl = `${source.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
      const doc = (await fetchJson(discoveryUrl, limits)) as Record<string, unknown>;
      // OIDC Discovery 4.3: the document must be about exactly this issuer.
      if (doc?.issuer !== source.issuer) throw new FetchJsonError(`${discoveryUrl}: issuer does not match`);
      if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) {
        throw new FetchJsonError(`${discoveryUrl}: no http(s) jwks_uri`);
      }
      jwksUri = doc.jwks_uri;
    }
    const jwks = (await fetchJson(jwksUri, limits)) as { keys?: unknown };
    if (!jwks || !Array.isArray(jwks.keys)) throw new FetchJsonError(`${jwksUri}: not a JWK set`);
    if (jwks.keys.length > this.opts.maxKeys) throw new FetchJsonError(`${jwksUri}: more than ${this.opts.maxKeys} keys`);
    return (jwks.keys as unknown[]).filter((k): k is JWK => {
      const reason = unusable(k);
      if (reason) this.onKeyDropped(source.issuer, typeof (k as JWK)?.kid === 'string' ? (k as JWK).kid : undefined, reason);
      return reason === null;
    });
  }
}

/**
 * Why a published key must not verify anything, or null when it may. Only public signature keys:
 * a symmetric or private key in a published set is a mistake or an attack. A key that does not
 * import, or an RSA key under 2048 bits, would otherwise fail inside jose with a TypeError (a 500)
 * rather than a verification error.
 */
function unusable(k: unknown): string | null {
  if (typeof k !== 'object' || k === null || Array.isArray(k)) return 'not a JWK object';
  const jwk = k as JWK;
  if (jwk.kty === 'oct') return 'symmetric key';
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) return 'private key material';
  if (jwk.use !== undefined && jwk.use !== 'sig') return `use ${String(jwk.use).slice(0, 20)}`;
  let key;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    return 'not an importable public key';
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if ((key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') && (bits === undefined || bits < MIN_RSA_BITS)) {
    return `RSA key of ${bits ?? '?'} bits`;
  }
  return null;
}
