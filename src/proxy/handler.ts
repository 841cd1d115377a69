/**
 * One proxied call, as an ordered list of steps (DESIGN "The proxy, per request"): token ->
 * route -> scopes -> block rules -> approval hold -> forward with masking -> one record. Each
 * refusal is a protocol error thrown by its step and written in one place; every call, allowed
 * or not, leaves exactly one `proxy.call` record.
 *
 * The token is checked before the route table is consulted, so a caller without a valid token
 * learns nothing about which routes exist (every such call is a 401).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ProxyConfig } from '../config/proxy.js';
import { InsufficientScope, InvalidRequest, InvalidToken, MissingCredentials, OAuthError } from '../http/errors.js';
import { readBody } from '../http/body.js';
import { publicError } from '../http/error_response.js';
import { chooseRequestId } from '../http/request_id.js';
import type { ApprovalDesk } from './approvals.js';
import type { CallRecord } from './audit_spool.js';
import { ApprovalRequired, Blocked, NoRoute, ProxyUnavailable } from './errors.js';
import { BlockRules } from './block_rules.js';
import { CallRecorder } from './call_record.js';
import type { ProxyMetrics } from './metrics.js';
import type { RevocationSet } from './revocations.js';
import { normalizePath, UnsafePath, type Route, type RouteTable } from './routes.js';
import type { TokenVerifier, VerifiedToken } from './token_verifier.js';
import { requestHasBody, type Upstream } from './upstream.js';

export interface ProxyDeps {
  config: ProxyConfig;
  routes: RouteTable;
  /** Null until the broker's issuer is known. */
  verifier: () => TokenVerifier | null;
  revocations: RevocationSet;
  /** Whether revocations can be trusted right now (CONTRACT: feed.max_staleness); null when they can. */
  feedProblem: () => string | null;
  approvals: ApprovalDesk;
  upstream: Upstream;
  record: (record: CallRecord) => void;
  metrics: ProxyMetrics;
  log: Logger;
}

/** Every decision a call can end in (the record's `decision`, the metrics' label). */
export type Decision =
  | 'allowed'
  | 'no_token'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'no_route'
  | 'blocked'
  | 'approval_required'
  | 'unavailable'
  | 'bad_request'
  | 'upstream_error'
  | 'error';

const JSON_HEADERS = ['Content-Type', 'application/json; charset=utf-8', 'Cache-Control', 'no-store'];

export function proxyHandler(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const blockRules = new BlockRules(deps.config.block_requests);
  const bodyLimit = deps.config.limits.max_body_bytes;

  return async (req, res) => {
    const started = process.hrtime.bigint();
    const reqId = chooseRequestId(req.headers['x-request-id']);
    const method = req.method ?? 'GET';
    const rawTarget = req.url ?? '/';
    const queryAt = rawTarget.indexOf('?');
    const rawPath = queryAt < 0 ? rawTarget : rawTarget.slice(0, queryAt);
    const recorder = new CallRecorder(deps.config.record, req.headers['content-type']);
    let token: VerifiedToken | undefined;
    let route: Route | undefined;
    let approvalId: string | undefined;
    let decision: Decision = 'allowed';
    let status = 0;
    let bytesOut = 0;
    let masked = {};
    // The client went away: stop waiting on approvals and abort the upstream request.
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });

    try {
      const bearer = bearerToken(req);
      const feedProblem = deps.feedProblem();
      if (feedProblem !== null) throw new ProxyUnavailable('the proxy cannot check revocations right now; retry later', feedProblem);
      const verifier = deps.verifier();
      if (!verifier) throw new ProxyUnavailable('the proxy has not reached the broker yet; retry later', 'issuer unknown');
      token = await verifier.verify(bearer);
      const revokedBy = deps.revocations.covers(token);
      if (revokedBy) throw new InvalidToken(`token revoked (by ${revokedBy})`);

      let path: string;
      try {
        path = normalizePath(rawPath);
      } catch (err) {
        if (err instanceof UnsafePath) throw new InvalidRequest('the request path is not acceptable', err.message);
        throw err;
      }
      route = deps.routes.match(method, path);
      if (!route) throw new NoRoute(method);
      if (route.block) throw new Blocked(`route ${route.name}`);
      requireScopes(token, route.scopes);

      const needsBody = route.model_scope !== undefined || blockRules.readsBody || route.approval !== undefined;
      const body = needsBody ? await readBody(req, bodyLimit) : null;
      if (body) recorder.requestBody(body);
      const model = route.model_scope ? modelOf(body!, route.model_scope) : undefined;
      if (model !== undefined) requireModel(token, model);
      const blockedBy = blockRules.check(rawTarget, req.headers, body);
      if (blockedBy) throw new Blocked(blockedBy);

      if (route.approval) {
        const outcome = await deps.approvals.hold(
          { jti: token.jti, sub: token.sub, job_id: token.job_id, route: route.name, method, path, model, request_sha256: createHash('sha256').update(body!).digest('hex') },
          route.approval.wait,
          token.exp,
          abort.signal,
        );
        approvalId = outcome.id;
        if (outcome.status !== 'approved') throw new ApprovalRequired(outcome.id, outcome.status);
      }

      const target = queryAt < 0 ? path : path + rawTarget.slice(queryAt);
      const mask = route.maskPolicy;
      recorder.responseMaskedWith(mask);
      const result = await deps.upstream.forward(
        {
          req,
          target,
          token,
          body,
          mask,
          signal: abort.signal,
          onBody: (chunk) => recorder.responseBody(chunk),
          onRequestBody: (chunk) => recorder.requestBody(chunk),
        },
        res,
      );
      status = result.status;
      bytesOut = result.bytesOut;
      masked = result.masked;
    } catch (err) {
      const oauth = publicError(err, deps.log, reqId);
      decision = decisionOf(oauth);
      status = oauth.status;
      if (!res.headersSent) {
        const text = JSON.stringify(oauth.toJSON());
        bytesOut = Buffer.byteLength(text);
        const extra = Object.entries(oauth.headers).flat();
        // A body we did not read cannot be followed by another request on this connection.
        if (!req.readableEnded && requestHasBody(req)) extra.push('Connection', 'close');
        res.writeHead(status, [...JSON_HEADERS, 'Content-Length', String(bytesOut), 'X-Request-Id', reqId, ...extra]);
        res.end(text);
      } else {
        res.destroy();
      }
    }

    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    deps.metrics.calls.inc({ route: route?.name ?? '', decision });
    deps.metrics.callSeconds.observe({ decision }, seconds);
    for (const [type, n] of Object.entries(masked)) if (n) deps.metrics.masked.inc({ type }, n as number);
    deps.record(
      recorder.finish({
        id: randomUUID(),
        token,
        route: route?.name ?? null,
        method,
        path: rawPath,
        status,
        decision,
        masked,
        bytesIn: recorder.bytesIn,
        bytesOut,
        latencyMs: seconds * 1000,
        approvalId,
        requestId: reqId,
        responseType: res.getHeader('content-type') as string | undefined,
      }),
    );
  };
}

/** RFC 6750 2.1: `Authorization: Bearer <token>`. Anything else is "no token" (401, no error code). */
function bearerToken(req: IncomingMessage): string {
  const value = req.headers.authorization;
  if (value === undefined) throw new MissingCredentials();
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(value);
  if (!match) {
    if (/^Bearer\b/i.test(value)) throw new InvalidToken('not a bearer token (RFC 6750 syntax)');
    throw new MissingCredentials();
  }
  return match[1]!;
}

function requireScopes(token: VerifiedToken, scopes: readonly string[]): void {
  for (const scope of scopes) if (!token.scopes.has(scope)) throw new InsufficientScope(scopes.join(' '));
}

/** `model:<name>` or `model:*` (CONTRACT section 7). */
function requireModel(token: VerifiedToken, model: string): void {
  if (!token.scopes.has(`model:${model}`) && !token.scopes.has('model:*')) throw new InsufficientScope(`model:${model}`);
}

/** The model named by the JSON body at `path` (e.g. ["model"]); a 400 when it is not there. */
function modelOf(body: Buffer, path: readonly string[]): string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new InvalidRequest(`this route needs a JSON body naming body.${path.join('.')}`);
  }
  for (const key of path) value = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
  if (typeof value !== 'string' || value === '' || value.length > 256 || /\s/.test(value)) {
    throw new InvalidRequest(`body.${path.join('.')} must name the model (a string without spaces)`);
  }
  return value;
}

function decisionOf(err: OAuthError): Decision {
  switch (err.code) {
    case 'invalid_token':
      return 'invalid_token';
    case 'insufficient_scope':
      return 'insufficient_scope';
    case 'no_route':
      return 'no_route';
    case 'blocked':
      return 'blocked';
    case 'approval_required':
      return 'approval_required';
    case 'temporarily_unavailable':
      return 'unavailable';
    case 'bad_gateway':
      return 'upstream_error';
    default:
      return err.status === 401 ? 'no_token' : err.status >= 500 ? 'error' : 'bad_request';
  }
}
