/**
 * The broker's express app: one route per endpoint module, shared limits and headers, and
 * one error serializer. No domain logic here.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { errorHandler, notFound } from '../http/error_response.js';
import { MAX_BODY_BYTES } from '../http/body.js';
import { requestId } from '../http/request_id.js';
import { HELMET_OPTIONS } from '../http/security_headers.js';
import { createApprovalEndpoint, decideApprovalEndpoint, listApprovalsEndpoint } from './admin_approvals.js';
import { AUDIT_BATCH_MAX_BYTES, auditEventsEndpoint } from './admin_audit_events.js';
import { adminRevocationsEndpoint } from './admin_revocations.js';
import { listKeysEndpoint, rotateKeysEndpoint } from './admin_keys.js';
import { createAuthenticator, requirePermission } from './auth.js';
import type { BrokerContext } from './context.js';
import { devRoutes } from './dev_routes.js';
import { healthzEndpoint, metricsEndpoint, readyzEndpoint } from './health.js';
import { introspectEndpoint } from './introspect.js';
import { jwksEndpoint, metadataEndpoint } from './metadata.js';
import { revocationStreamEndpoint } from './revocation_stream.js';
import { revokeEndpoint } from './revoke.js';
import { tokenEndpoint } from './token.js';


export function createBrokerApp(ctx: BrokerContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  // req.ip is the socket's address unless the request came through a configured load balancer.
  app.set('trust proxy', ctx.config.limits.trusted_proxies.length > 0 ? [...ctx.config.limits.trusted_proxies] : false);
  // The token endpoint writes its own headers (request id, helmet's set, precomputed), so it
  // needs none of the middleware below. main.ts normally serves it before express altogether.
  const token = tokenEndpoint(ctx);
  app.post('/oauth2/token', (req, res) => void token(req, res));
  app.use(requestId);
  app.use(helmet(HELMET_OPTIONS));
  if (ctx.log.isLevelEnabled('debug')) app.use(accessLog(ctx));
  // OAuth endpoints read their own form bodies (http/params.ts); JSON only where JSON is taken.
  const json = express.json({ limit: MAX_BODY_BYTES, strict: true });
  // Audit batches are larger by design (admin_audit_events.ts says why); only that route takes them.
  const auditJson = express.json({ limit: AUDIT_BATCH_MAX_BYTES, strict: true });

  const auth = createAuthenticator(ctx);
  app.get(['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'], metadataEndpoint(ctx));
  app.get('/jwks.json', jwksEndpoint(ctx));
  app.post('/oauth2/revoke', revokeEndpoint(ctx));
  app.post('/oauth2/introspect', requirePermission(auth, 'mintgate:introspect'), introspectEndpoint(ctx));
  app.post('/admin/revocations', requirePermission(auth, 'mintgate:admin'), json, adminRevocationsEndpoint(ctx));
  app.get('/admin/revocations/stream', requirePermission(auth, 'mintgate:proxy'), revocationStreamEndpoint(ctx, { heartbeatMs: ctx.heartbeatMs }));
  app.post('/admin/approvals', requirePermission(auth, 'mintgate:proxy'), json, createApprovalEndpoint(ctx));
  app.get('/admin/approvals', requirePermission(auth, 'mintgate:admin'), listApprovalsEndpoint(ctx));
  app.post('/admin/approvals/:id/approve', requirePermission(auth, 'mintgate:admin'), decideApprovalEndpoint(ctx, 'approved'));
  app.post('/admin/approvals/:id/deny', requirePermission(auth, 'mintgate:admin'), decideApprovalEndpoint(ctx, 'denied'));
  app.post('/admin/audit/events', requirePermission(auth, 'mintgate:proxy'), auditJson, auditEventsEndpoint(ctx));
  app.get('/admin/keys', requirePermission(auth, 'mintgate:admin'), listKeysEndpoint(ctx));
  app.post('/admin/keys/rotate', requirePermission(auth, 'mintgate:admin'), rotateKeysEndpoint(ctx));
  app.get('/healthz', healthzEndpoint());
  app.get('/readyz', readyzEndpoint(ctx));
  app.get('/metrics', metricsEndpoint(ctx));
  if (ctx.devIssuer) app.use(json, devRoutes(ctx.devIssuer));

  app.use(notFound);
  app.use(errorHandler(ctx.log));
  return app;
}

/** One line per request: method, path (never the query), status, time. Never a header. */
function accessLog(ctx: BrokerContext) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      ctx.log.debug(
        { req_id: req.id, method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 },
        'request',
      );
    });
    next();
  };
}
