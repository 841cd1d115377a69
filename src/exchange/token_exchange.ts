/**
 * RFC 8693 token exchange, the domain side (no HTTP): DESIGN "The exchange, step by step".
 * Each subject token type has its own path; both end in the same grant and mint.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/sink.js';
import type { BrokerConfig } from '../config/broker.js';
import { InvalidRequest, TemporarilyUnavailable } from '../http/errors.js';
import { StoreUnavailable, type IssuedToken, type Store } from '../store/store.js';
import type { JwksCache } from './assertions/jwks_cache.js';
import { OwnTokenInvalid, type OwnTokenVerifier } from './assertions/mintgate.js';
import { verifyOidcAssertion } from './assertions/oidc.js';
import { decideGrant, type Ceiling } from './grant.js';
import type { Minter } from './mint.js';
import { decide, RuleEvaluationError, type CompiledTrustEntry } from './policy.js';
import type { RateLimit } from './rate_limit.js';

export const GRANT_TYPE_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  saml2: 'urn:ietf:params:oauth:token-type:saml2',
} as const;
export const SUBJECT_TOKEN_TYPES: readonly string[] = [TOKEN_TYPE.idToken, TOKEN_TYPE.jwt, TOKEN_TYPE.accessToken];

export interface ExchangeRequest {
  subjectToken: string;
  subjectTokenType: string;
  audience: string | undefined;
  scopes: string[] | undefined;
  /** Seconds, a positive integer. */
  expiresIn: number | undefined;
}

/** RFC 8693 2.2.1. */
export interface ExchangeResponse {
  access_token: string;
  issued_token_type: typeof TOKEN_TYPE.accessToken;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

export interface TokenExchangeDeps {
  config: Pick<BrokerConfig, 'tokens'>;
  trust: ReadonlyMap<string, CompiledTrustEntry>;
  jwks: JwksCache;
  store: Store;
  ownTokens: OwnTokenVerifier;
  minter: Minter;
  /** Exchanges per subject. */
  limiter: RateLimit;
  audit: AuditSink;
  log: Logger;
  now: () => number;
}

export class TokenExchange {
  constructor(private readonly deps: TokenExchangeDeps) {}

  async exchange(request: ExchangeRequest): Promise<{ response: ExchangeResponse; record: IssuedToken }> {
    try {
      return request.subjectTokenType === TOKEN_TYPE.accessToken ? await this.narrow(request) : await this.fromAssertion(request);
    } catch (err) {
      if (err instanceof StoreUnavailable) throw new TemporarilyUnavailable(err.message);
      throw err;
    }
  }

  /** An identity provider's assertion: verify, find the rule, grant, claim once, mint. */
  private async fromAssertion(request: ExchangeRequest) {
    const { tokens } = this.deps.config;
    const assertion = await verifyOidcAssertion(request.subjectToken, {
      trust: this.deps.trust,
      jwks: this.deps.jwks,
      clockSkew: tokens.clock_skew,
      now: this.deps.now,
    });
    let decision;
    try {
      decision = decide(assertion.entry, assertion.claims);
    } catch (err) {
      if (err instanceof RuleEvaluationError) throw new InvalidRequest('the subject token lacks claims the trust rule needs', err.message);
      throw err;
    }
    if (!decision) throw new InvalidRequest('no trust rule admits this subject token', `issuer ${assertion.entry.name}: no rule matched`);
    const { rule, subject } = decision;
    const job = decision.job ?? randomUUID();
    const ceiling: Ceiling = {
      audiences: rule.grant.audiences,
      scopes: rule.grant.scopes,
      maxTtl: Math.min(rule.grant.max_ttl ?? tokens.max_ttl, tokens.max_ttl),
    };
    const grant = decideGrant(ceiling, request, tokens.default_ttl);
    const jobRevocation = await this.deps.store.findJobRevocation(job);
    if (jobRevocation) throw new InvalidRequest('this job has been revoked', `job ${job} revoked`);
    await this.deps.limiter.consume(subject);

    // Single use (SPEC.md 4, "assertion replay"): claimed only now, after every check passed, so a
    // job whose first request asked for a scope it may not have can retry with the same token.
    const nowSec = Math.floor(this.deps.now() / 1000);
    // Without a jti, the signed part (header.payload) identifies the assertion: hashing the whole
    // token would let a second valid encoding of the same signature (ECDSA's (r, n-s)) pass.
    const replayKey = hashKey(assertion.iss, assertion.jti ?? request.subjectToken.slice(0, request.subjectToken.lastIndexOf('.')));
    const replayTtl = Math.max(1, assertion.exp - nowSec + tokens.clock_skew);
    if (!(await this.deps.store.claimAssertion(replayKey, replayTtl))) {
      throw new InvalidRequest('the subject token has already been used', `replay of an assertion from ${assertion.entry.name}`);
    }
    const minted = await this.deps.minter.mint({
      sub: subject,
      job_id: job,
      client_id: rule.clientId,
      aud: grant.audience,
      scopes: grant.scopes,
      exp: nowSec + grant.ttl,
      src: { iss: assertion.iss, sub: assertion.sub, ...(assertion.jti ? { jti: assertion.jti } : {}) },
    });
    return this.respond(minted, { rule: rule.clientId, issuer: assertion.iss, assertion_sub: assertion.sub });
  }

  /** A mintgate token narrowed into a child: never broader, never outliving its parent. */
  private async narrow(request: ExchangeRequest) {
    const { tokens } = this.deps.config;
    let parent;
    try {
      parent = await this.deps.ownTokens.verify(request.subjectToken);
    } catch (err) {
      if (err instanceof OwnTokenInvalid) throw new InvalidRequest('the subject token is not acceptable', `narrowing: ${err.message}`);
      throw err;
    }
    const nowSec = Math.floor(this.deps.now() / 1000);
    const ceiling: Ceiling = {
      audiences: [parent.aud],
      scopes: parent.scope.split(' ').filter(Boolean),
      maxTtl: Math.min(tokens.max_ttl, parent.exp - nowSec),
    };
    if (ceiling.maxTtl < 1) throw new InvalidRequest('the subject token is not acceptable', 'parent about to expire');
    const grant = decideGrant(ceiling, request, tokens.default_ttl);
    await this.deps.limiter.consume(parent.sub);
    const minted = await this.deps.minter.mint({
      sub: parent.sub,
      job_id: parent.job_id,
      client_id: parent.client_id,
      aud: grant.audience,
      scopes: grant.scopes,
      exp: nowSec + grant.ttl,
      src: parent.src,
      act: { sub: parent.sub, jti: parent.jti, ...(parent.act ? { act: parent.act } : {}) },
    });
    return this.respond(minted, { rule: parent.client_id, parent_jti: parent.jti });
  }

  private respond(minted: Awaited<ReturnType<Minter['mint']>>, details: Record<string, unknown>) {
    const { record } = minted;
    this.deps.audit.emit({
      type: 'token.issued',
      jti: record.jti,
      job_id: record.job_id,
      sub: record.sub,
      details: { ...details, aud: record.aud, scope: record.scope, exp: record.exp },
    });
    const response: ExchangeResponse = {
      access_token: minted.token,
      issued_token_type: TOKEN_TYPE.accessToken,
      token_type: 'Bearer',
      expires_in: record.exp - record.iat,
      scope: record.scope,
    };
    return { response, record };
  }
}

/** oidc-provider's replay key: a hash of issuer and jti (or of the whole token when it has none). */
function hashKey(iss: string, id: string): string {
  return createHash('sha256').update(iss).update('\n').update(id).digest('base64url');
}
