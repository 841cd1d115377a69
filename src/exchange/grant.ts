/**
 * What a token may carry, decided from what the rule (or the parent token) grants and what the
 * client asked for: one audience, a subset of the scopes, a clamped lifetime.
 */
import { InvalidScope, InvalidTarget } from '../http/errors.js';

export interface Ceiling {
  audiences: readonly string[];
  scopes: readonly string[];
  /** Seconds. */
  maxTtl: number;
}

export interface GrantRequest {
  audience: string | undefined;
  scopes: string[] | undefined;
  /** Seconds requested, already validated as a positive integer. */
  expiresIn: number | undefined;
}

export interface Grant {
  audience: string;
  scopes: string[];
  /** Seconds. */
  ttl: number;
}

/**
 * True when `granted` covers `requested`: equal, or `prefix:*` covering `prefix:anything`
 * (so `model:*` in a grant lets a job ask for exactly `model:llama-3-8b`).
 */
export function scopeCovers(granted: string, requested: string): boolean {
  if (granted === requested) return true;
  return granted.endsWith(':*') && requested.length >= granted.length && requested.startsWith(granted.slice(0, -1));
}

export function decideGrant(ceiling: Ceiling, request: GrantRequest, defaultTtl: number): Grant {
  const audience = request.audience ?? ceiling.audiences[0]!;
  if (!ceiling.audiences.includes(audience)) {
    throw new InvalidTarget('the requested audience is not granted', `audience ${JSON.stringify(audience.slice(0, 200))}`);
  }
  const scopes = request.scopes ?? [...ceiling.scopes];
  const refused = scopes.filter((s) => !ceiling.scopes.some((g) => scopeCovers(g, s)));
  if (refused.length > 0) {
    throw new InvalidScope('a requested scope is not granted', `scopes ${JSON.stringify(refused.slice(0, 10))}`);
  }
  const ttl = Math.min(request.expiresIn ?? defaultTtl, ceiling.maxTtl);
  return { audience, scopes: [...new Set(scopes)], ttl };
}
