/**
 * `POST /admin/audit/events`: proxies ship their call records here in batches (CONTRACT
 * sections 4, 7 and 8; `mintgate:proxy`). A proxy spools each record first and ships it until
 * the broker says it has it, so a batch can arrive twice (the answer was lost): every event id
 * is claimed once in the store, and only events claimed now reach the audit log.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { InvalidRequest, TemporarilyUnavailable } from '../http/errors.js';
import { firstIssue, requireJsonBody } from '../http/json_body.js';
import { StoreUnavailable } from '../store/store.js';
import { principalOf } from './auth.js';
import type { BrokerContext } from './context.js';

/** Events in one batch, at most. */
export const AUDIT_BATCH_MAX_EVENTS = 500;
/**
 * Bytes of one batch's body, at most (4 MiB). A call record is small (route, status, decision,
 * masked counts, bytes, latency: well under 1 KiB), so 500 fit many times over; the cap is
 * what one request may make the broker hold in memory while it parses (express.json reads the
 * whole body), far above the 64 KiB the other endpoints take. A proxy whose records carry
 * bodies splits its batches by size too.
 */
export const AUDIT_BATCH_MAX_BYTES = 4 * 1024 * 1024;
/** Bytes of one event's `details`, serialised, at most (256 KiB). */
export const AUDIT_DETAILS_MAX_BYTES = 256 * 1024;
/** How long an event id is remembered (7 days): a batch shipped again within that is not recorded twice. */
export const AUDIT_DEDUPE_SECONDS = 7 * 24 * 3600;

const identifier = z.string().min(1).max(256);
const event = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'id must be 8-64 characters of A-Z a-z 0-9 _ -'),
  type: z.literal('proxy.call'),
  ts: z.iso.datetime({ offset: true }),
  jti: identifier.optional(),
  job_id: identifier.optional(),
  sub: identifier.optional(),
  details: z
    .record(z.string(), z.unknown())
    .refine((d) => Buffer.byteLength(JSON.stringify(d)) <= AUDIT_DETAILS_MAX_BYTES, `details must be at most ${AUDIT_DETAILS_MAX_BYTES} bytes as JSON`),
});
const batch = z.strictObject({ events: z.array(event).min(1).max(AUDIT_BATCH_MAX_EVENTS) });

/** 200 `{accepted, duplicates}`; 503 when the store is unreachable (the proxy ships the batch again). */
export function auditEventsEndpoint(ctx: BrokerContext) {
  return async (req: Request, res: Response): Promise<void> => {
    requireJsonBody(req);
    const parsed = batch.safeParse(req.body);
    if (!parsed.success) throw new InvalidRequest(`bad audit batch: ${firstIssue(parsed.error)}`);
    const { events } = parsed.data;
    const claims = await Promise.allSettled(events.map((e) => ctx.store.claimAuditEvent(e.id, AUDIT_DEDUPE_SECONDS)));
    let accepted = 0;
    let duplicates = 0;
    let failure: unknown;
    // Every event claimed now is recorded, even when other claims failed: the batch comes back,
    // and those then count as duplicates. So nothing is lost and nothing recorded twice.
    claims.forEach((claim, i) => {
      if (claim.status === 'rejected') {
        failure ??= claim.reason;
        return;
      }
      if (!claim.value) {
        duplicates++;
        return;
      }
      const { id, ts, jti, job_id, sub, details } = events[i]!;
      ctx.audit.emit({
        id,
        ts,
        type: 'proxy.call',
        ...(jti === undefined ? {} : { jti }),
        ...(job_id === undefined ? {} : { job_id }),
        ...(sub === undefined ? {} : { sub }),
        details,
      });
      accepted++;
    });
    const principal = principalOf(req);
    ctx.log.debug({ req_id: req.id, by: principal.sub, accepted, duplicates, failed: failure !== undefined }, 'audit batch');
    if (failure !== undefined) {
      if (failure instanceof StoreUnavailable) throw new TemporarilyUnavailable(failure.message);
      throw failure;
    }
    res.json({ accepted, duplicates });
  };
}
