/**
 * Request ids: a caller's `X-Request-Id` is kept when it is short and plain (so a trace spans
 * the CI job, the broker and the proxy); otherwise a new UUID. Echoed in the response.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

const SAFE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
  }
}

/** The caller's id when it is short and plain, else a new UUID. */
export function chooseRequestId(given: string | string[] | undefined): string {
  return typeof given === 'string' && SAFE_ID.test(given) ? given : randomUUID();
}

export function requestId(req: Request, res: Response, next: NextFunction): void {
  req.id = chooseRequestId(req.headers['x-request-id']);
  res.setHeader('X-Request-Id', req.id);
  next();
}
