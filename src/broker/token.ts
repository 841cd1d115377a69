/**
 * `POST /oauth2/token`: RFC 8693 token exchange. An ordered list of small steps, readable top
 * to bottom (oidc-provider's shape); the domain work happens in exchange/token_exchange.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidRequest, OAuthError, UnsupportedGrantType } from '../http/errors.js';
import { publicError } from '../http/error_response.js';
import { readParams, type Params } from '../http/params.js';
import { chooseRequestId } from '../http/request_id.js';
import { securityHeaders } from '../http/security_headers.js';
import { GRANT_TYPE_TOKEN_EXCHANGE, SUBJECT_TOKEN_TYPES, TOKEN_TYPE, type ExchangeRequest } from '../exchange/token_exchange.js';
import { MAX_ASSERTION_BYTES } from '../exchange/assertions/compact_jwt.js';
import type { BrokerContext } from './context.js';

const MAX_SCOPE_LENGTH = 2048;
const MAX_AUDIENCE_LENGTH = 512;

/**
 * The token endpoint as a plain node handler: the hottest path of the broker answers without
 * express's per-request machinery (measured in bench/: the middleware stack cost as much as the
 * exchange itself). It never throws: every outcome is written here.
 */
export function tokenEndpoint(ctx: BrokerContext): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  // RFC 8693 2.2.1 / RFC 6749 5.1: token responses are never cached. Built once.
  const fixed = [...securityHeaders(), 'Cache-Control', 'no-store', 'Pragma', 'no-cache', 'Content-Type', 'application/json; charset=utf-8'];
  const debug = ctx.log.isLevelEnabled('debug');
  return async (req, res) => {
    const started = process.hrtime.bigint();
    const reqId = chooseRequestId(req.headers['x-request-id']);
    let status = 200;
    let body: string;
    let extra: string[] = [];
    let outcome = 'issued';
    try {
      // Per address first: a flood of garbage costs one counter increment, not a parse.
      await ctx.addressLimiter.consume(ctx.clientAddress(req));
      const params = await readParams(req, ['audience', 'resource']);
      checkGrantType(params);
      const { response } = await ctx.exchange.exchange(parseExchangeRequest(params));
      body = JSON.stringify(response);
    } catch (err) {
      const oauth = publicError(err, ctx.log, reqId);
      outcome = oauth.code;
      status = oauth.status;
      body = JSON.stringify(oauth.toJSON());
      extra = Object.entries(oauth.headers).flat();
      // A body we stopped reading cannot be followed by another request on this connection.
      if (status === 413) extra.push('Connection', 'close');
    }
    res.writeHead(status, [...fixed, 'Content-Length', String(Buffer.byteLength(body)), 'X-Request-Id', reqId, ...extra]);
    res.end(body);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    ctx.metrics.exchanges.inc({ outcome });
    ctx.metrics.exchangeSeconds.observe({ outcome }, seconds);
    if (debug) ctx.log.debug({ req_id: reqId, method: 'POST', path: '/oauth2/token', status, ms: seconds * 1000 }, 'request');
  };
}

function checkGrantType(params: Params): void {
  const grantType = params.one('grant_type');
  if (!grantType) throw new InvalidRequest('grant_type is required');
  if (grantType !== GRANT_TYPE_TOKEN_EXCHANGE) throw new UnsupportedGrantType(grantType);
}

function parseExchangeRequest(params: Params): ExchangeRequest {
  const subjectToken = params.one('subject_token');
  const subjectTokenType = params.one('subject_token_type');
  if (!subjectToken) throw new InvalidRequest('subject_token is required');
  if (!subjectTokenType) throw new InvalidRequest('subject_token_type is required');
  if (subjectToken.length > MAX_ASSERTION_BYTES) throw new InvalidRequest('the subject token is not acceptable', 'subject_token over 8 KiB');
  if (!SUBJECT_TOKEN_TYPES.includes(subjectTokenType)) {
    throw new InvalidRequest('unsupported subject_token_type', `subject_token_type ${subjectTokenType.slice(0, 80)}`);
  }
  // RFC 8693 2.1: actor_token and actor_token_type travel together; delegation by an actor
  // token is not offered (narrowing a mintgate token records `act` instead).
  if (params.one('actor_token') !== undefined || params.one('actor_token_type') !== undefined) {
    throw new InvalidRequest('actor tokens are not supported');
  }
  const requestedType = params.one('requested_token_type');
  if (requestedType !== undefined && requestedType !== TOKEN_TYPE.accessToken && requestedType !== TOKEN_TYPE.jwt) {
    throw new InvalidRequest('only access tokens are issued', `requested_token_type ${requestedType.slice(0, 80)}`);
  }
  return {
    subjectToken,
    subjectTokenType,
    audience: parseAudience(params),
    scopes: parseScope(params.one('scope')),
    expiresIn: parseExpiresIn(params.one('expires_in')),
  };
}

/** One target per token (SPEC.md 1): `audience` or `resource`, one value between them. */
function parseAudience(params: Params): string | undefined {
  const targets = [...new Set([...params.many('audience'), ...params.many('resource')])];
  if (targets.length > 1) throw new OAuthError('invalid_target', 400, 'a token is issued for exactly one audience');
  const target = targets[0];
  if (target !== undefined && target.length > MAX_AUDIENCE_LENGTH) throw new InvalidRequest('audience is too long');
  return target;
}

function parseScope(scope: string | undefined): string[] | undefined {
  if (scope === undefined) return undefined;
  if (scope.length > MAX_SCOPE_LENGTH) throw new InvalidRequest('scope is too long');
  // RFC 6749 3.3: space-delimited, each token printable ASCII without `"` or `\`.
  const scopes = scope.split(' ').filter(Boolean);
  if (scopes.length === 0 || !scopes.every((s) => /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s))) {
    throw new OAuthError('invalid_scope', 400, 'scope is malformed');
  }
  return scopes;
}

function parseExpiresIn(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d{0,9}$/.test(value)) throw new InvalidRequest('expires_in must be a positive whole number of seconds');
  return Number(value);
}
