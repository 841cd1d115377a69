/**
 * What the /admin endpoints that take JSON share: the content-type check (express.json leaves
 * any other body unread, which would then pass for an empty one) and one readable line per
 * validation failure. Neither ever echoes a value from the body, only where it failed.
 */
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { InvalidRequest } from './errors.js';

/** @throws InvalidRequest (415) unless the request declares a JSON body. */
export function requireJsonBody(req: IncomingMessage): void {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    throw new InvalidRequest('send a JSON body', undefined, 415);
  }
}

/** The first issue of a failed parse, prefixed with where it is (`events.3.ts: ...`). */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid body';
  const where = issue.path.map(String).join('.');
  return where ? `${where}: ${issue.message}` : issue.message;
}
