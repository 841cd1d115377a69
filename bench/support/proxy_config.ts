/**
 * The config of every proxy the bench starts: CONTRACT section 7's, with its two block rules
 * (one on the body, one on the path) and its chat route (scope `inference:invoke`, a model
 * scope read from the JSON body, all ten mask types and `mask_fields`), or, with `mask: false`,
 * the same route without `mask` and `mask_fields`. Kept apart from proxy_stack.ts so that the
 * proxy process (bench/servers/proxy.ts) loads nothing else of the bench.
 */
import { AUDIENCE } from './github.js';

export const CHAT_PATH = '/v1/chat/completions';
/** CONTRACT section 7's mask list: all ten types. */
export const MASK_TYPES = ['email', 'credit_card', 'us_ssn', 'aws_access_key', 'private_key', 'jwt', 'bearer_token', 'api_key', 'iban', 'phone'] as const;
export const MASK_FIELDS = ['password', 'api_key', 'secret', 'token'] as const;

/** What bench/servers/proxy.ts is started with (JSON in `BENCH_PROXY_SPEC`). */
export interface ProxySpec {
  broker: string;
  upstream: string;
  spoolDir: string;
  /** The chat route masks (all ten types and the fields) or not. */
  mask: boolean;
}

/** The proxy config file (CONTRACT section 7) for `spec`, as the YAML would parse. */
export function benchProxyConfig(spec: ProxySpec): Record<string, unknown> {
  return {
    broker: spec.broker,
    audience: AUDIENCE,
    credential_env: 'MINTGATE_PROXY_TOKEN',
    upstream: spec.upstream,
    record: { bodies: true, max_bytes: 65536, spool_dir: spec.spoolDir },
    feed: { max_staleness: '30s' },
    block_requests: [
      { where: 'body', pattern: '(?i)cat\\s+/etc/(passwd|shadow)' },
      { where: 'path', pattern: '\\.\\./' },
    ],
    routes: [
      {
        name: 'chat',
        method: 'POST',
        path: CHAT_PATH,
        scopes: ['inference:invoke'],
        model_scope: 'body.model',
        ...(spec.mask ? { mask: [...MASK_TYPES], mask_fields: [...MASK_FIELDS] } : {}),
      },
    ],
  };
}

