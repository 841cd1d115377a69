/**
 * OAuth parameters from a form (or JSON) body, one value each. A repeated parameter is refused
 * (RFC 6749 3.2: "parameters MUST NOT be included more than once"), except those RFC 8693 2.1
 * lets repeat (`audience`, `resource`). Parameters sent without a value count as omitted (3.1).
 */
import type { IncomingMessage } from 'node:http';
import { readBody } from './body.js';
import { InvalidRequest } from './errors.js';

export type Params = { one(name: string): string | undefined; many(name: string): string[] };

const MAX_PARAMETERS = 64;
const FORM = /^application\/x-www-form-urlencoded\s*(;|$)/i;
const JSON_TYPE = /^application\/json\s*(;|$)/i;
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)/i;

/** Reads and parses the body of `req` (form or JSON) into parameters. */
export async function readParams(req: IncomingMessage, repeatable: readonly string[] = []): Promise<Params> {
  const type = req.headers['content-type'] ?? '';
  const isForm = FORM.test(type);
  if (!isForm && !JSON_TYPE.test(type)) {
    throw new InvalidRequest('send the parameters as application/x-www-form-urlencoded (or JSON)', `content-type ${type.slice(0, 60)}`, 415);
  }
  const charset = CHARSET.exec(type)?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw new InvalidRequest('only UTF-8 bodies are accepted', `charset ${charset.slice(0, 20)}`, 415);
  const text = (await readBody(req)).toString('utf8');
  return isForm ? formParams(text, repeatable) : jsonParams(text, repeatable);
}

function formParams(text: string, repeatable: readonly string[]): Params {
  const values = new Map<string, string[]>();
  let count = 0;
  for (const [name, value] of new URLSearchParams(text)) {
    if (++count > MAX_PARAMETERS) throw new InvalidRequest('too many parameters');
    add(values, name, value, repeatable);
  }
  return asParams(values);
}

function jsonParams(text: string, repeatable: readonly string[]): Params {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new InvalidRequest('the request body is not well-formed');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidRequest('the request body must be an object of parameters');
  const entries = Object.entries(body as Record<string, unknown>);
  if (entries.length > MAX_PARAMETERS) throw new InvalidRequest('too many parameters');
  const values = new Map<string, string[]>();
  for (const [name, raw] of entries) {
    const list = Array.isArray(raw) ? raw : [raw];
    if (!list.every((v) => typeof v === 'string')) throw new InvalidRequest(`parameter ${name.slice(0, 40)} must be a string`);
    for (const value of list as string[]) add(values, name, value, repeatable);
  }
  return asParams(values);
}

function add(values: Map<string, string[]>, name: string, value: string, repeatable: readonly string[]): void {
  const list = values.get(name);
  if (list === undefined) values.set(name, [value]);
  else if (repeatable.includes(name)) list.push(value);
  else throw new InvalidRequest(`parameter ${name.slice(0, 40)} is repeated`);
}

function asParams(values: Map<string, string[]>): Params {
  // An empty value is an omitted parameter (RFC 6749 3.1), but still counts as a repeat above.
  const present = (name: string): string[] => (values.get(name) ?? []).filter((v) => v !== '');
  return { one: (name) => present(name)[0], many: present };
}
