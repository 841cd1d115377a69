/**
 * `POST /oauth2/revoke` (RFC 7009): possession of a mintgate token is enough to revoke it.
 * 200 for every well-formed request, also for unknown, expired or foreign tokens (2.2); 503
 * when the store cannot record the revocation (2.2.1: the token is still live, retry).
 */
import type { Request, Response } from 'express';
import { OwnTokenInvalid } from '../exchange/assertions/mintgate.js';
import { InvalidRequest, TemporarilyUnavailable } from '../http/errors.js';
import { readParams } from '../http/params.js';
import { StoreUnavailable } from '../store/store.js';
import type { BrokerContext } from './context.js';
import { buildRevocation } from './revocation_policy.js';

export function revokeEndpoint(ctx: BrokerContext) {
  return async (req: Request, res: Response): Promise<void> => {
    res.setHeader('Cache-Control', 'no-store');
    const params = await readParams(req);
    const token = params.one('token');
    if (!token) throw new InvalidRequest('token is required');
    let claims;
    try {
      claims = await ctx.ownTokens.verifySignature(token);
    } catch (err) {
      if (err instanceof OwnTokenInvalid) {
        ctx.log.info({ req_id: req.id, reason: err.reason }, 'revocation of a token that is not live: nothing to do');
        res.status(200).end();
        return;
      }
      throw err;
    }
    try {
      const revocation = await ctx.store.revoke(
        await buildRevocation(ctx.config, ctx.store, 'jti', claims.jti, 'revoked by its holder (RFC 7009)', ctx.now(), claims.exp),
      );
      ctx.metrics.revocations.inc({ kind: 'jti' });
      ctx.audit.emit({ type: 'token.revoked', jti: claims.jti, job_id: claims.job_id, sub: claims.sub, details: { by: 'holder', revocation_id: revocation.id } });
    } catch (err) {
      if (err instanceof StoreUnavailable) throw new TemporarilyUnavailable(err.message);
      throw err;
    }
    res.status(200).end();
  };
}
