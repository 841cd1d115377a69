/**
 * Local verification of mintgate access tokens at the proxy (RFC 9068 section 4): the broker's
 * published keys (fetched, cached, refreshed on an unknown kid with a cooldown, kept through a
 * broker outage), `typ: at+jwt`, exact `iss` and `aud`, `exp`/`nbf`/`iat` with skew. A verified
 * token is remembered until its `exp`, so the signature of a token in use is checked once; the
 * revocation check is not cached (it runs on every request, against the feed-fed deny-list).
 */
import { errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { SIGNING_ALGORITHMS } from '../config/broker.js';
import { decodeCompactJwt, MalformedJwt } from '../exchange/assertions/compact_jwt.js';
import { JwksCache, KeysUnavailable } from '../exchange/assertions/jwks_cache.js';
import { InvalidToken } from '../http/errors.js';
import { ProxyUnavailable } from './errors.js';
import type { RevocableToken } from './revocations.js';

/** A verified token, as the proxy uses it. */
export interface VerifiedToken extends RevocableToken {
  aud: string;
  scopes: ReadonlySet<string>;
  client_id: string;
  /** NumericDate seconds. */
  exp: number;
}

export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
  jwksUri: string;
  clockSkewSeconds: number;
  now?: () => number;
  /** Most tokens remembered at once (default 50,000): the oldest is forgotten first. */
  cacheSize?: number;
  /** Minimum ms between two key fetches on an unknown kid (default 10,000). */
  kidCooldownMs?: number;
  /** Ms after which keys are refreshed in the background (default 60,000). */
  keysMaxAgeMs?: number;
  onKeysError?: (err: Error) => void;
}

export class TokenVerifier {
  private readonly cache = new Map<string, VerifiedToken>();
  private readonly jwks: JwksCache;
  private readonly source: { issuer: string; jwks_uri: string };
  private readonly now: () => number;
  private readonly cacheSize: number;
  private keysLoaded = false;

  constructor(private readonly opts: TokenVerifierOptions) {
    this.now = opts.now ?? Date.now;
    this.cacheSize = opts.cacheSize ?? 50_000;
    this.source = { issuer: opts.issuer, jwks_uri: opts.jwksUri };
    this.jwks = new JwksCache({
      now: this.now,
      cooldownMs: opts.kidCooldownMs ?? 10_000,
      maxAgeMs: opts.keysMaxAgeMs ?? 60_000,
      ...(opts.onKeysError ? { onFetchError: (_issuer: string, err: Error) => opts.onKeysError!(err) } : {}),
    });
  }

  /** True once the broker's keys have been fetched at least once. */
  get ready(): boolean {
    return this.keysLoaded;
  }

  /** Loads (or refreshes, when due) the broker's keys; resolves false while they cannot be had. */
  async warm(): Promise<boolean> {
    try {
      await this.jwks.resolver(this.source);
      this.keysLoaded = true;
    } catch (err) {
      if (!(err instanceof KeysUnavailable)) throw err;
    }
    return this.keysLoaded;
  }

  /**
   * The verified token, or InvalidToken (401) for anything wrong with it, or ProxyUnavailable
   * (503) when the broker's keys were never loaded (nothing can be verified yet).
   */
  async verify(token: string): Promise<VerifiedToken> {
    const known = this.cache.get(token);
    const nowMs = this.now();
    if (known !== undefined) {
      if ((known.exp + this.opts.clockSkewSeconds) * 1000 > nowMs) return known;
      this.cache.delete(token);
      throw new InvalidToken('token expired');
    }
    const verified = await this.verifyUncached(token, nowMs);
    if (this.cache.size >= this.cacheSize) this.evict();
    this.cache.set(token, verified);
    return verified;
  }

  /** Drops expired tokens (called periodically). */
  prune(): void {
    const nowMs = this.now();
    for (const [token, v] of this.cache) if ((v.exp + this.opts.clockSkewSeconds) * 1000 <= nowMs) this.cache.delete(token);
  }

  private evict(): void {
    this.prune();
    // Still full of live tokens: forget the oldest tenth (they are verified again if seen).
    if (this.cache.size < this.cacheSize) return;
    let drop = Math.ceil(this.cacheSize / 10);
    for (const token of this.cache.keys()) {
      if (drop-- <= 0) break;
      this.cache.delete(token);
    }
  }

  private async verifyUncached(token: string, nowMs: number): Promise<VerifiedToken> {
    try {
      decodeCompactJwt(token);
    } catch (err) {
      if (err instanceof MalformedJwt) throw new InvalidToken(`malformed token: ${err.message}`);
      throw err;
    }
    let resolver: JWTVerifyGetKey;
    try {
      resolver = await this.jwks.resolver(this.source);
      this.keysLoaded = true;
    } catch (err) {
      if (err instanceof KeysUnavailable) throw new ProxyUnavailable('the proxy has not loaded the broker keys yet; retry later', err.message);
      throw err;
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, resolver, {
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        typ: 'at+jwt',
        algorithms: [...SIGNING_ALGORITHMS],
        clockTolerance: this.opts.clockSkewSeconds,
        currentDate: new Date(nowMs),
        requiredClaims: ['exp', 'iat', 'jti', 'sub', 'aud', 'client_id', 'scope', 'job_id'],
      }));
    } catch (err) {
      if (err instanceof KeysUnavailable) throw new ProxyUnavailable('the proxy has not loaded the broker keys yet; retry later', err.message);
      if (err instanceof joseErrors.JOSEError) throw new InvalidToken(`${err.code}: ${err.message}`);
      throw err;
    }
    const { aud, scope, job_id, jti, sub, client_id, iat, exp } = payload;
    // RFC 8725 3.9 / SPEC "aud confusion": exact string equality, nothing else.
    if (aud !== this.opts.audience) throw new InvalidToken('aud is not exactly this proxy audience');
    if (typeof scope !== 'string' || typeof job_id !== 'string' || typeof jti !== 'string' || typeof sub !== 'string' || typeof client_id !== 'string') {
      throw new InvalidToken('claims of the wrong type');
    }
    if (typeof iat !== 'number' || iat * 1000 > nowMs + this.opts.clockSkewSeconds * 1000) throw new InvalidToken('iat in the future');
    return {
      jti,
      sub,
      job_id,
      aud,
      client_id,
      iat,
      exp: exp as number,
      scopes: new Set(scope.split(' ').filter(Boolean)),
      ancestors: ancestorsOf(payload.act),
    };
  }
}

/** The jtis of an `act` chain, nearest parent first (bounded, as the broker does). */
function ancestorsOf(act: unknown): string[] {
  const out: string[] = [];
  let a = act as { jti?: unknown; act?: unknown } | undefined;
  while (a && typeof a === 'object' && out.length < 32) {
    if (typeof a.jti === 'string') out.push(a.jti);
    a = a.act as typeof a;
  }
  return out;
}
