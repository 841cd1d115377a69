/** Dev mode only (CONTRACT section 6): the dev issuer's token, discovery and JWKS endpoints. */
import { Router, type Request, type Response } from 'express';
import type { DevIssuer } from '../dev/dev_issuer.js';
import { InvalidRequest } from '../http/errors.js';

export function devRoutes(dev: DevIssuer): Router {
  const router = Router();
  router.post('/dev/oidc/token', async (req: Request, res: Response) => {
    const claims: unknown = req.body ?? {};
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new InvalidRequest('send a JSON object of claims');
    res.setHeader('Cache-Control', 'no-store');
    res.json({ token: await dev.sign(claims as Record<string, unknown>) });
  });
  router.get('/dev/oidc/.well-known/openid-configuration', (_req, res) => {
    res.json(dev.discovery());
  });
  router.get('/dev/oidc/jwks.json', (_req, res) => {
    res.type('application/jwk-set+json').send(JSON.stringify(dev.jwks()));
  });
  return router;
}
