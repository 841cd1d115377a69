/** `GET /admin/keys` and `POST /admin/keys/rotate`. */
import type { Request, Response } from 'express';
import type { KeyStatus } from '../keys/key_manager.js';
import { principalOf } from './auth.js';
import type { BrokerContext } from './context.js';

const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());

/** Wire form: times in RFC 3339; `retires_at`/`expires_at` only once a successor exists. */
export function keyStatusJson(k: KeyStatus): Record<string, string> {
  const out: Record<string, string | undefined> = {
    kid: k.kid,
    alg: k.alg,
    state: k.state,
    created_at: iso(k.created_at),
    activates_at: iso(k.activates_at),
    retires_at: iso(k.retires_at),
    expires_at: iso(k.expires_at),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

export function listKeysEndpoint(ctx: BrokerContext) {
  return async (_req: Request, res: Response): Promise<void> => {
    res.json({ keys: ctx.keys.statuses().map(keyStatusJson) });
  };
}

export function rotateKeysEndpoint(ctx: BrokerContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const before = ctx.keys.version;
    const statuses = await ctx.keys.rotate();
    if (ctx.keys.version !== before) {
      const next = statuses.find((k) => k.state === 'next');
      ctx.audit.emit({ type: 'key.rotated', details: { by: principalOf(req).sub, kid: next?.kid, activates_at: next?.activates_at } });
    }
    res.json({ keys: statuses.map(keyStatusJson) });
  };
}
