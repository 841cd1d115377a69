/**
 * mintgate's own tokens, presented back to the broker: as a subject token to be narrowed, to
 * `/oauth2/revoke`, `/oauth2/introspect`, and as an `/admin` credential. Verified against our
 * own published keys, then against the store: the issued record must exist (a token without a
 * record is not ours, whatever its signature says) and no revocation may cover it.
 */
import { errors as joseErrors, jwtVerify } from 'jose';
import { SIGNING_ALGORITHMS } from '../../config/broker.js';
import type { KeyManager } from '../../keys/key_manager.js';
import { ancestorsOf, type Actor, type IssuedToken, type Revocation, type Store } from '../../store/store.js';
import { decodeCompactJwt, MalformedJwt } from './compact_jwt.js';

/** The claims of a verified mintgate token (CONTRACT section 5). */
export interface MintgateClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  client_id: string;
  scope: string;
  job_id: string;
  src: IssuedToken['src'];
  act?: Actor;
}

export type OwnTokenFailure = 'malformed' | 'signature' | 'expired' | 'claims' | 'unknown' | 'revoked';

/** Why a presented mintgate token is not valid (for logs; callers map it to their protocol). */
export class OwnTokenInvalid extends Error {
  override name = 'OwnTokenInvalid';
  constructor(
    readonly reason: OwnTokenFailure,
    message: string,
    readonly revocation?: Revocation,
  ) {
    super(message);
  }
}

export interface OwnTokenVerifierOptions {
  issuer: string;
  keys: KeyManager;
  store: Store;
  clockSkew: number;
  now: () => number;
}

export class OwnTokenVerifier {
  constructor(private readonly opts: OwnTokenVerifierOptions) {}

  /**
   * Verifies signature, `typ: at+jwt`, `iss`, lifetime and (when given) `aud`; then the record
   * and revocations. Store failures propagate (callers fail closed with 503).
   */
  async verify(token: string, expect: { audience?: string } = {}): Promise<MintgateClaims> {
    const claims = await this.verifySignature(token, expect);
    const record = await this.opts.store.getIssued(claims.jti);
    if (!record || record.sub !== claims.sub || record.job_id !== claims.job_id) {
      throw new OwnTokenInvalid('unknown', `no issued record for jti ${claims.jti}`);
    }
    const revocation = await this.opts.store.findRevocation({ ...claims, ancestors: ancestorsOf(claims.act) });
    if (revocation) throw new OwnTokenInvalid('revoked', `jti ${claims.jti} revoked (${revocation.kind})`, revocation);
    return claims;
  }

  /** Signature and claims only: for revocation, where possession is enough (RFC 7009). */
  async verifySignature(token: string, expect: { audience?: string } = {}): Promise<MintgateClaims> {
    try {
      decodeCompactJwt(token);
    } catch (err) {
      if (err instanceof MalformedJwt) throw new OwnTokenInvalid('malformed', err.message);
      throw err;
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.opts.keys.verificationKeys(), {
        issuer: this.opts.issuer,
        typ: 'at+jwt',
        algorithms: [...SIGNING_ALGORITHMS],
        clockTolerance: this.opts.clockSkew,
        currentDate: new Date(this.opts.now()),
        requiredClaims: ['exp', 'iat', 'jti', 'sub', 'aud', 'client_id', 'scope', 'job_id'],
        ...(expect.audience === undefined ? {} : { audience: expect.audience }),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new OwnTokenInvalid('expired', 'token expired');
      if (err instanceof joseErrors.JOSEError) throw new OwnTokenInvalid(err instanceof joseErrors.JWTClaimValidationFailed ? 'claims' : 'signature', `${err.code}: ${err.message}`);
      throw err;
    }
    if (typeof payload.aud !== 'string' || typeof payload.scope !== 'string' || typeof payload.job_id !== 'string') {
      throw new OwnTokenInvalid('claims', 'claims of the wrong type');
    }
    return payload as unknown as MintgateClaims;
  }
}
