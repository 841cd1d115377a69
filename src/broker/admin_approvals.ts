/**
 * Human approval of held requests (CONTRACT sections 4 and 7): the proxy opens an approval
 * (`POST /admin/approvals`, `mintgate:proxy`), an operator lists and decides
 * (`GET /admin/approvals`, `POST /admin/approvals/{id}/approve|deny`, `mintgate:admin`), and the
 * decision reaches the proxy as `event: approval` on the revocation stream.
 */
import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { Conflict, InvalidRequest, NotFound, TemporarilyUnavailable } from '../http/errors.js';
import { firstIssue, requireJsonBody } from '../http/json_body.js';
import { StoreUnavailable, type Approval, type ApprovalDecision } from '../store/store.js';
import { principalOf } from './auth.js';
import type { BrokerContext } from './context.js';

/** Longest an approval may stay open, in seconds: a held request cannot wait longer. */
export const MAX_APPROVAL_SECONDS = 3600;

/** `apr_` and 22 base64url characters: 128 random bits, unguessable and safe in a URL path. */
const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{22}$/;

/** A fresh approval id: `apr_` and 22 base64url characters. */
export function newApprovalId(): string {
  return `apr_${randomBytes(16).toString('base64url')}`;
}

const identifier = z.string().min(1).max(256);
const body = z.strictObject({
  jti: identifier,
  sub: identifier,
  job_id: identifier,
  route: z.string().min(1).max(128),
  // An HTTP method is a token (RFC 9110 5.6.2 and 9.1).
  method: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/, 'method must be an HTTP method'),
  // The request target as the proxy saw it; no control characters, so it prints safely.
  path: z.string().max(4096).regex(/^\/[^\x00-\x1f\x7f]*$/, 'path must start with / and hold no control characters'),
  // Absent and null both mean "no model" (the wire form answers null).
  model: z.string().min(1).max(256).nullish(),
  request_sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'request_sha256 must be 64 hex digits'),
  expires_in: z.number().int().min(1).max(MAX_APPROVAL_SECONDS),
});
const statusQuery = z.enum(['pending', 'approved', 'denied', 'expired']).optional();

/** The JSON an approval leaves the broker as. */
export interface ApprovalJson {
  id: string;
  status: Approval['status'];
  jti: string;
  sub: string;
  job_id: string;
  route: string;
  method: string;
  path: string;
  /** null when the route has no model. */
  model: string | null;
  request_sha256: string;
  created_at: string;
  expires_at: string;
  decided_by?: string;
  decided_at?: string;
}

/**
 * The wire form of an approval, in the list, in approve/deny answers and as the data of
 * `event: approval`: times in RFC 3339, `model` always present (null when none), `decided_by`
 * and `decided_at` only once decided.
 */
export function approvalJson(a: Approval): ApprovalJson {
  const iso = (ms: number): string => new Date(ms).toISOString();
  return {
    id: a.id,
    status: a.status,
    jti: a.jti,
    sub: a.sub,
    job_id: a.job_id,
    route: a.route,
    method: a.method,
    path: a.path,
    model: a.model ?? null,
    request_sha256: a.request_sha256,
    created_at: iso(a.created_at),
    expires_at: iso(a.expires_at),
    ...(a.decided_by === undefined ? {} : { decided_by: a.decided_by }),
    ...(a.decided_at === undefined ? {} : { decided_at: iso(a.decided_at) }),
  };
}

/** Runs a store call; an unreachable store is a 503, so the proxy retries. */
async function fromStore<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof StoreUnavailable) throw new TemporarilyUnavailable(err.message);
    throw err;
  }
}

/** `POST /admin/approvals`: 201 `{id, status: "pending", expires_at}`. */
export function createApprovalEndpoint(ctx: BrokerContext) {
  return async (req: Request, res: Response): Promise<void> => {
    requireJsonBody(req);
    const parsed = body.safeParse(req.body);
    if (!parsed.success) throw new InvalidRequest(`bad approval request: ${firstIssue(parsed.error)}`);
    const { expires_in, model, request_sha256, ...request } = parsed.data;
    const now = ctx.now();
    const approval = await fromStore(() =>
      ctx.store.createApproval({
        id: newApprovalId(),
        ...request,
        ...(model == null ? {} : { model }),
        request_sha256: request_sha256.toLowerCase(),
        created_at: now,
        expires_at: now + expires_in * 1000,
      }),
    );
    const principal = principalOf(req);
    const wire = approvalJson(approval);
    ctx.audit.emit({
      type: 'approval.requested',
      jti: approval.jti,
      job_id: approval.job_id,
      sub: approval.sub,
      details: {
        approval_id: approval.id,
        route: approval.route,
        method: approval.method,
        path: approval.path,
        model: wire.model,
        request_sha256: approval.request_sha256,
        expires_at: wire.expires_at,
        by: principal.sub,
        by_jti: principal.jti,
      },
    });
    res.status(201).json({ id: approval.id, status: approval.status, expires_at: wire.expires_at });
  };
}

/** `GET /admin/approvals[?status=...]`: the newest approvals first (at most 1,000). */
export function listApprovalsEndpoint(ctx: BrokerContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const status = statusQuery.safeParse(req.query.status);
    if (!status.success) throw new InvalidRequest('status must be one of pending, approved, denied, expired');
    const approvals = await fromStore(() => ctx.store.listApprovals(ctx.now(), status.data));
    res.json({ approvals: approvals.map(approvalJson) });
  };
}

/** `POST /admin/approvals/{id}/approve` and `.../deny`: 200 with the decided approval. */
export function decideApprovalEndpoint(ctx: BrokerContext, decision: ApprovalDecision) {
  return async (req: Request, res: Response): Promise<void> => {
    const id = String(req.params.id);
    // An id we could never have made is unknown without asking the store.
    if (!APPROVAL_ID.test(id)) throw new NotFound('no such approval');
    const principal = principalOf(req);
    const result = await fromStore(() => ctx.store.decideApproval(id, decision, principal.sub, ctx.now()));
    switch (result.outcome) {
      case 'unknown':
        throw new NotFound('no such approval');
      case 'conflict': {
        const { status } = result.approval;
        throw new Conflict(status === 'expired' ? `approval ${id} has expired` : `approval ${id} is already ${status}`);
      }
      case 'decided': {
        const { approval } = result;
        ctx.audit.emit({
          type: 'approval.decided',
          jti: approval.jti,
          job_id: approval.job_id,
          sub: approval.sub,
          details: {
            approval_id: approval.id,
            decision,
            by: principal.sub,
            by_jti: principal.jti,
            route: approval.route,
            method: approval.method,
            path: approval.path,
            request_sha256: approval.request_sha256,
            event_id: result.event_id,
          },
        });
        res.json(approvalJson(approval));
      }
    }
  };
}
