/**
 * `block_requests` (CONTRACT section 7): RE2 patterns (re2js: linear time, since request bodies
 * are untrusted) tested against the request's path, one header, or its body. A path rule sees the
 * request target as sent (query included) and percent-decoded, so `%2e%2e/` is caught like `../`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { BlockRuleConfig } from '../config/proxy.js';

export class BlockRules {
  /** True when some rule reads the body (the proxy must then read it before forwarding). */
  readonly readsBody: boolean;

  constructor(private readonly rules: readonly BlockRuleConfig[]) {
    this.readsBody = rules.some((r) => r.where === 'body');
  }

  /** A description of the first rule the request matches, or null. */
  check(rawTarget: string, headers: IncomingHttpHeaders, body: Buffer | null): string | null {
    if (this.rules.length === 0) return null;
    let decodedTarget: string | undefined;
    let bodyText: string | undefined;
    for (const [i, rule] of this.rules.entries()) {
      let subjects: string[];
      if (rule.where === 'path') {
        decodedTarget ??= safeDecode(rawTarget);
        subjects = decodedTarget === rawTarget ? [rawTarget] : [rawTarget, decodedTarget];
      } else if (rule.where === 'body') {
        if (body === null || body.length === 0) continue;
        bodyText ??= body.toString('utf8');
        subjects = [bodyText];
      } else {
        const value = headers[rule.where.slice('header:'.length)];
        if (value === undefined) continue;
        subjects = Array.isArray(value) ? value : [value];
      }
      // test(), not matcher().find(): a yes/no needs no capture groups, and runs several times faster.
      if (subjects.some((s) => rule.pattern.test(s))) return `block_requests[${i}] (${rule.where})`;
    }
    return null;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
