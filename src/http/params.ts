/**
 * OAuth parameters from a form or JSON body, one value each. A repeated parameter is refused
 * (RFC 6749 3.2: "parameters MUST NOT be included more than once"), except those RFC 8693 2.1
 * lets repeat (`audience`, `resource`).
 */
import type { Request } from 'express';
import { InvalidRequest } from './errors.js';

export type Params = { one(name: string): string | undefined; many(name: string): string[] };

export function readParams(req: Request, repeatable: readonly string[] = []): Params {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/(x-www-form-urlencoded|json)\b/i.test(type)) {
    throw new InvalidRequest('send the parameters as application/x-www-form-urlencoded (or JSON)', `content-type ${type.slice(0, 60)}`, 415);
  }
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidRequest('the request body must be an object of parameters');
  const values = new Map<string, string[]>();
  for (const [name, raw] of Object.entries(body as Record<string, unknown>)) {
    const list = Array.isArray(raw) ? raw : [raw];
    if (!list.every((v) => typeof v === 'string')) throw new InvalidRequest(`parameter ${name.slice(0, 40)} must be a string`);
    if (list.length > 1 && !repeatable.includes(name)) throw new InvalidRequest(`parameter ${name.slice(0, 40)} is repeated`);
    // RFC 6749 3.1: parameters sent without a value are treated as omitted.
    const present = (list as string[]).filter((v) => v !== '');
    if (present.length > 0) values.set(name, present);
  }
  return {
    one: (name) => values.get(name)?.[0],
    many: (name) => values.get(name) ?? [],
  };
}
