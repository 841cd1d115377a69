/** Liveness, readiness and Prometheus metrics. */
import type { Request, Response } from 'express';
import type { BrokerContext } from './context.js';

export function healthzEndpoint() {
  return (_req: Request, res: Response): void => {
    res.json({ status: 'ok' });
  };
}

/** Ready when the store answers and a signing key is loaded. */
export function readyzEndpoint(ctx: BrokerContext) {
  return async (_req: Request, res: Response): Promise<void> => {
    const reasons: string[] = [];
    try {
      await ctx.store.ping();
    } catch {
      reasons.push('store unreachable');
    }
    try {
      ctx.keys.signingKey();
    } catch {
      reasons.push('no signing key');
    }
    res.setHeader('Cache-Control', 'no-store');
    if (reasons.length > 0) res.status(503).json({ status: 'unready', reasons });
    else res.json({ status: 'ready' });
  };
}

export function metricsEndpoint(ctx: BrokerContext) {
  return async (_req: Request, res: Response): Promise<void> => {
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  };
}
