/** `POST /admin/revocations`: revoke by `jti`, `job` or `sub` (CONTRACT section 4). */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { InvalidRequest, TemporarilyUnavailable } from '../http/errors.js';
import { requireJsonBody } from '../http/json_body.js';
import { StoreUnavailable, type Revocation, type RevocationKind } from '../store/store.js';
import { principalOf } from './auth.js';
import type { BrokerContext } from './context.js';
import { buildRevocation } from './revocation_policy.js';

const identifier = z.string().min(1).max(256);
const body = z
  .strictObject({ jti: identifier.optional(), job: identifier.optional(), sub: identifier.optional(), reason: z.string().max(256).optional() })
  .refine((b) => [b.jti, b.job, b.sub].filter((v) => v !== undefined).length === 1, 'give exactly one of jti, job, sub');

/** The wire form of a revocation: `{id, jti|job|sub, reason, at, until}`, times in RFC 3339. */
export function revocationJson(r: Revocation): Record<string, string> {
  return { id: r.id, [r.kind]: r.value, reason: r.reason, at: new Date(r.at).toISOString(), until: new Date(r.until).toISOString() };
}

export function adminRevocationsEndpoint(ctx: BrokerContext) {
  return async (req: Request, res: Response): Promise<void> => {
    requireJsonBody(req);
    const parsed = body.safeParse(req.body);
    if (!parsed.success) throw new InvalidRequest(`bad revocation: ${parsed.error.issues[0]?.message ?? 'invalid body'}`);
    const { reason = '', ...target } = parsed.data;
    const kind = (Object.keys(target) as RevocationKind[]).find((k) => target[k] !== undefined)!;
    const value = target[kind]!;
    try {
      const revocation = await ctx.store.revoke(await buildRevocation(ctx.config, ctx.store, kind, value, reason, ctx.now()));
      ctx.metrics.revocations.inc({ kind });
      const principal = principalOf(req);
      ctx.audit.emit({
        type: 'token.revoked',
        ...(kind === 'jti' ? { jti: value } : kind === 'job' ? { job_id: value } : { sub: value }),
        details: { by: principal.sub, by_jti: principal.jti, kind, reason, revocation_id: revocation.id },
      });
      res.status(201).json(revocationJson(revocation));
    } catch (err) {
      if (err instanceof StoreUnavailable) throw new TemporarilyUnavailable(err.message);
      throw err;
    }
  };
}
