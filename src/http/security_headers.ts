/**
 * The security headers of every response, as helmet sets them, computed once. Express routes
 * run helmet itself; the token endpoint's fast path writes this precomputed list, so both
 * answer with the same headers and the hot path pays for none of helmet's per-request work.
 */
import helmet from 'helmet';

export const HELMET_OPTIONS = { contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } };

/** Flat `[name, value, name, value, ...]`, ready for `res.writeHead`. */
export function securityHeaders(): string[] {
  const headers: string[] = [];
  const res = {
    setHeader(name: string, value: string | number | string[]) {
      headers.push(name, Array.isArray(value) ? value.join(', ') : String(value));
    },
    removeHeader() {},
    getHeader() {
      return undefined;
    },
  };
  let called = false;
  helmet(HELMET_OPTIONS)({ headers: {} } as never, res as never, () => {
    called = true;
  });
  // helmet's middleware is synchronous; if that ever changes, fail at start-up, not per request.
  if (!called) throw new TypeError('helmet did not run synchronously');
  return headers;
}
