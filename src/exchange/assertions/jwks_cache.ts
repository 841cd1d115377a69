/**
 * Keys of trusted OIDC issuers: discovery, then the JWKS, cached per issuer.
 *
 * Defaults (all overridable): a fetch times out after 5 s and may carry at most 256 KiB and
 * 100 keys; keys are refreshed in the background after 10 min; an unknown `kid` triggers a
 * refetch at most once per 30 s (so a flood of made-up kids cannot turn us into a load
 * generator against the IdP); concurrent misses share one fetch; when the IdP is down, the
 * keys already fetched keep being served (stale) rather than refusing every exchange.
 */
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
}

/** The issuer's keys could not be had at all (never fetched successfully). */
export class KeysUnavailable extends Error {
  override name = 'KeysUnavailable';
}

interface IssuerKeys {
  resolver: JWTVerifyGetKey | null;
  kids: Set<string>;
  fetchedAt: number;
  lastAttempt: number;
  inflight: Promise<void> | null;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export class JwksCache {
  private readonly issuers = new Map<string, IssuerKeys>();
  private readonly now: () => number;
  private readonly opts: Required<Omit<JwksCacheOptions, 'now' | 'onFetchError'>>;
  private readonly onFetchError: (issuer: string, err: Error) => void;

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
  }

  /**
   * A jose key resolver for this issuer. An unknown `kid` causes one cooled-down refetch;
   * if the kid is still unknown, jose's JWKSNoMatchingKey propagates (the token is refused).
   */
  async resolver(source: JwksSource): Promise<JWTVerifyGetKey> {
    const state = await this.ensure(source);
    const resolve: JWTVerifyGetKey = async (header, input) => {
      if (header.kid !== undefined && !state.kids.has(header.kid)) await this.refresh(source, state, false);
      if (!state.resolver) throw new KeysUnavailable(`no keys for ${source.issuer}`);
      return state.resolver(header, input);
    };
    return resolve;
  }

  private async ensure(source: JwksSource): Promise<IssuerKeys> {
    let state = this.issuers.get(source.issuer);
    if (!state) {
      state = { resolver: null, kids: new Set(), fetchedAt: 0, lastAttempt: -Infinity, inflight: null };
      this.issuers.set(source.issuer, state);
    }
    if (source.static_jwks) {
      if (!state.resolver) this.adopt(state, source.static_jwks.keys);
      return state;
    }
    if (!state.resolver) {
      await this.refresh(source, state, true);
      if (!state.resolver) throw new KeysUnavailable(`the keys of ${source.issuer} could not be fetched`);
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
      })
      .catch((err: Error) => this.onFetchError(source.issuer, err))
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
    // Only public signature keys: a symmetric or private key in a published set is a mistake or an attack.
    return (jwks.keys as JWK[]).filter(
      (k) => k && typeof k === 'object' && k.kty !== 'oct' && !PRIVATE_MEMBERS.some((m) => m in k) && (k.use === undefined || k.use === 'sig'),
    );
  }
}
