/**
 * `POST /oauth2/introspect` (RFC 7662). The caller must hold `mintgate:introspect` (or be
 * admin). Anything not live (revoked, expired, foreign, garbage) is exactly `{"active":false}`.
 */
import type { Request, Response } from 'express';
import { OwnTokenInvalid } from '../exchange/assertions/mintgate.js';
import { InvalidRequest, TemporarilyUnavailable } from '../http/errors.js';
import { readParams } from '../http/params.js';
import { StoreUnavailable } from '../store/store.js';
import type { BrokerContext } from './context.js';

export function introspectEndpoint(ctx: BrokerContext) {
  return async (req: Request, res: Response): Promise<void> => {
    res.setHeader('Cache-Control', 'no-store');
    const token = (await readParams(req)).one('token');
    if (!token) throw new InvalidRequest('token is required');
    try {
      const claims = await ctx.ownTokens.verify(token);
      res.status(200).json({
        active: true,
        scope: claims.scope,
        client_id: claims.client_id,
        token_type: 'Bearer',
        exp: claims.exp,
        iat: claims.iat,
        nbf: claims.nbf,
        sub: claims.sub,
        aud: claims.aud,
        iss: claims.iss,
        jti: claims.jti,
        job_id: claims.job_id,
        src: claims.src,
        ...(claims.act ? { act: claims.act } : {}),
      });
    } catch (err) {
      if (err instanceof OwnTokenInvalid) {
        res.status(200).json({ active: false });
        return;
      }
      if (err instanceof StoreUnavailable) throw new TemporarilyUnavailable(err.message);
      throw err;
    }
  };
}
