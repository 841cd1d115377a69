/**
 * Minting (CONTRACT section 5, RFC 9068). The issued-token record is written before the token
 * is signed, so a store failure can never leave a token without its record.
 */
import { randomUUID } from 'node:crypto';
import { CompactSign } from 'jose';
import type { KeyManager } from '../keys/key_manager.js';
import type { Actor, IssuedToken, Store } from '../store/store.js';

const encoder = new TextEncoder();

export interface MintInput {
  sub: string;
  job_id: string;
  client_id: string;
  aud: string;
  scopes: string[];
  /** Absolute NumericDate (seconds) the token expires at. */
  exp: number;
  src: IssuedToken['src'];
  act?: Actor;
}

export interface Minted {
  token: string;
  record: IssuedToken;
}

export interface MinterOptions {
  issuer: string;
  keys: KeyManager;
  store: Store;
  /** Seconds the record outlives the token (audit retention and clock skew). */
  recordRetention: number;
  now: () => number;
}

export class Minter {
  constructor(private readonly opts: MinterOptions) {}

  async mint(input: MintInput): Promise<Minted> {
    const iat = Math.floor(this.opts.now() / 1000);
    const record: IssuedToken = {
      // A UUID fits AWS's SourceIdentity rules (2-64 of [\w+=,.@-]).
      jti: randomUUID(),
      sub: input.sub,
      job_id: input.job_id,
      client_id: input.client_id,
      aud: input.aud,
      scope: input.scopes.join(' '),
      iat,
      exp: input.exp,
      src: input.src,
      ...(input.act ? { act: input.act } : {}),
    };
    await this.opts.store.recordIssued(record, Math.max(1, input.exp - iat) + this.opts.recordRetention);
    const key = this.opts.keys.signingKey();
    // RFC 9068 claims, serialised once; CompactSign rather than SignJWT, which would rebuild them.
    const claims = {
      iss: this.opts.issuer,
      sub: record.sub,
      aud: record.aud,
      exp: record.exp,
      iat,
      nbf: iat,
      jti: record.jti,
      client_id: record.client_id,
      scope: record.scope,
      job_id: record.job_id,
      src: record.src,
      ...(record.act ? { act: record.act } : {}),
    };
    const token = await new CompactSign(encoder.encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
      .sign(key.key);
    return { token, record };
  }
}
