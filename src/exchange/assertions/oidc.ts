/**
 * OIDC assertions (GitHub Actions, GitLab, Kubernetes, any OIDC issuer): the straight line of
 * DESIGN "The exchange" step 2. Read the unverified `iss`, find its trust entry (unknown issuer:
 * refuse, fetch nothing), resolve keys from the cache, verify signature and claims with jose.
 */
import { compactVerify, errors as joseErrors } from 'jose';
import { InvalidRequest, TemporarilyUnavailable } from '../../http/errors.js';
import type { CompiledTrustEntry } from '../policy.js';
import { decodeCompactJwt, MalformedJwt } from './compact_jwt.js';
import { KeysUnavailable, type JwksCache } from './jwks_cache.js';

export interface VerifiedAssertion {
  entry: CompiledTrustEntry;
  claims: Record<string, unknown>;
  iss: string;
  sub: string;
  jti: string | undefined;
  /** NumericDate seconds. */
  exp: number;
}

/** Typ values an identity assertion may carry; anything else is some other kind of JWT. */
const ACCEPTED_TYP = new Set(['jwt', 'at+jwt', 'application/at+jwt']);

export interface OidcVerifierOptions {
  trust: ReadonlyMap<string, CompiledTrustEntry>;
  jwks: JwksCache;
  /** Seconds of leeway on exp, nbf and iat. */
  clockSkew: number;
  now: () => number;
}

export async function verifyOidcAssertion(token: string, opts: OidcVerifierOptions): Promise<VerifiedAssertion> {
  const refuse = (detail: string): never => {
    throw new InvalidRequest('the subject token is not acceptable', detail);
  };
  let decoded;
  try {
    decoded = decodeCompactJwt(token);
  } catch (err) {
    if (err instanceof MalformedJwt) return refuse(`malformed assertion: ${err.message}`);
    throw err;
  }
  const { header, claims } = decoded;
  const iss = claims.iss as string;
  const entry = opts.trust.get(iss);
  if (!entry) return refuse(`untrusted issuer ${JSON.stringify(iss.slice(0, 200))}`);
  // The algorithm comes from our configuration, never from the token (RS/HS confusion).
  if (!entry.algorithms.includes(header.alg)) return refuse(`alg ${header.alg.slice(0, 20)} not allowed for ${entry.name}`);
  if (header.typ !== undefined && !ACCEPTED_TYP.has(header.typ.toLowerCase())) return refuse(`typ ${header.typ.slice(0, 40)} is not an identity token`);

  const aud = claims.aud as string | string[];
  // CONTRACT section 3: an array aud is accepted only when every value is one we accept.
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.every((a) => entry.audiences.has(a))) return refuse(`aud not accepted by ${entry.name}`);

  const nowMs = opts.now();
  const nowSec = Math.floor(nowMs / 1000);
  if (typeof claims.iat === 'number' && claims.iat > nowSec + opts.clockSkew) return refuse('iat is in the future');
  // Lifetime with the configured leeway (RFC 7519 4.1.4-4.1.5; the types were checked on decode).
  if ((claims.exp as number) <= nowSec - opts.clockSkew) return refuse('expired');
  if (typeof claims.nbf === 'number' && claims.nbf > nowSec + opts.clockSkew) return refuse('not yet valid (nbf)');

  // An outage of the IdP is a 503 (retry later); an IdP whose key set we refuse (redirect,
  // oversize, too many keys) cannot vouch for this token: a refusal like any other (SPEC.md 4).
  const keysUnavailable = (err: KeysUnavailable): never => {
    if (err.transient) throw new TemporarilyUnavailable(err.message);
    return refuse(`${entry.name}: ${err.message}`);
  };
  let resolver;
  try {
    resolver = await opts.jwks.resolver(entry);
  } catch (err) {
    if (err instanceof KeysUnavailable) return keysUnavailable(err);
    throw err;
  }
  try {
    // The signature only: the claims were decoded once (strictly) and checked above, so jose
    // need not decode and check them a second time on the hottest path.
    await compactVerify(token, resolver, { algorithms: entry.algorithms });
  } catch (err) {
    if (err instanceof KeysUnavailable) return keysUnavailable(err);
    if (err instanceof joseErrors.JOSEError) return refuse(`${entry.name}: ${err.code}: ${err.message}`);
    throw err;
  }
  return {
    entry,
    claims,
    iss,
    sub: claims.sub as string,
    jti: claims.jti as string | undefined,
    exp: claims.exp as number,
  };
}
