/**
 * The proxy's configuration (CONTRACT section 7), parsed once at start-up into a frozen object.
 * As for the broker, unknown keys, bad values and impossible combinations stop start-up with a
 * message naming the key. Durations are held in seconds; patterns are compiled here, so a bad
 * one is a start-up error, never a request-time one.
 */
import { RE2JS } from 're2js';
import { z } from 'zod';
import { DETECTOR_TYPES } from '../proxy/mask/detectors.js';
import { ConfigError, deepFreeze, duration, parseConfig, readYamlFile } from './common.js';

const nonEmpty = z.string().trim().min(1, 'must not be empty');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name');
const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/, 'must be an HTTP header name')
  .transform((h) => h.toLowerCase());
const scope = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope is printable ASCII without space, " or \\');

/**
 * A route path: segments separated by `/`, where `*` stands for exactly one segment and a final
 * `**` for the rest (zero or more segments).
 */
const routePath = z
  .string()
  .regex(/^\/[^\s?#]*$/, 'must start with / and hold no spaces, ? or #')
  .refine((p) => !p.split('/').slice(0, -1).includes('**'), '** may only be the last segment')
  .refine((p) => !p.startsWith('/_mintgate/') && p !== '/_mintgate', '/_mintgate/ is reserved for the proxy itself');

/** RE2 syntax (linear time: request bodies are untrusted). Compiled at load. */
const pattern = z.string().min(1).max(1000).transform((text, ctx) => {
  try {
    return RE2JS.compile(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not an RE2 pattern: ${(err as Error).message}` });
    return z.NEVER;
  }
});

const blockRule = z.strictObject({
  where: z
    .string()
    .regex(/^(path|body|header:[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64})$/, 'must be path, body or header:<name>')
    .transform((w) => w.toLowerCase() as 'path' | 'body' | `header:${string}`),
  pattern,
});

const maskType = z.enum(DETECTOR_TYPES);

const routeSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'use 1-64 of A-Z a-z 0-9 _ . -'),
  /** Absent: any method. */
  method: z
    .string()
    .regex(/^[A-Za-z]{1,16}$/, 'must be an HTTP method')
    .transform((m) => m.toUpperCase())
    .optional(),
  path: routePath,
  scopes: z.array(scope).default([]),
  /** `body.<dotted path>`: the request also needs scope `model:<value>` (or `model:*`). */
  model_scope: z
    .string()
    .regex(/^body(\.[A-Za-z0-9_-]{1,64}){1,8}$/, 'must be body.<field>[.<field>...]')
    .transform((s) => s.split('.').slice(1))
    .optional(),
  mask: z.array(maskType).default([]),
  mask_fields: z.array(nonEmpty).default([]),
  approval: z.strictObject({ wait: duration }).optional(),
  block: z.boolean().default(false),
});

const fileSchema = z.strictObject({
  broker: httpUrl,
  /** The `iss` tokens must carry; default: the `issuer` of the broker's metadata. (extension) */
  issuer: httpUrl.optional(),
  audience: nonEmpty,
  credential_env: envName.default('MINTGATE_PROXY_TOKEN'),
  upstream: httpUrl,
  upstream_auth: z.strictObject({ header: headerName, value_env: envName, prefix: z.string().max(64).default('') }).optional(),
  /** (later, with DPoP) the URL clients use; accepted now so configs can carry it. */
  public_url: httpUrl.optional(),
  record: z
    .strictObject({
      bodies: z.boolean().default(true),
      // Per body; a record must fit the broker's 256 KiB per event with both bodies masked.
      max_bytes: z.number().int().nonnegative().max(65536, 'at most 65536 (a record must fit the broker audit event cap)').default(65536),
      spool_dir: nonEmpty.default('spool'),
    })
    .default({ bodies: true, max_bytes: 65536, spool_dir: 'spool' }),
  feed: z.strictObject({ max_staleness: duration.default(30) }).default({ max_staleness: 30 }),
  /** Leeway for exp/nbf/iat, as the broker's tokens.clock_skew. (extension) */
  clock_skew: duration.default(30),
  limits: z
    .strictObject({
      /** Largest request body the proxy reads when a rule needs it (model scope, body blocks, approvals). (extension) */
      max_body_bytes: z.number().int().positive().max(256 * 1024 * 1024).default(10 * 1024 * 1024),
    })
    .default({ max_body_bytes: 10 * 1024 * 1024 }),
  block_requests: z.array(blockRule).default([]),
  routes: z.array(routeSchema).min(1, 'at least one route (no route means every request is refused)'),
});

export type ProxyFileConfig = z.infer<typeof fileSchema>;
export type RouteConfig = ProxyFileConfig['routes'][number];
export type BlockRuleConfig = ProxyFileConfig['block_requests'][number];

/** Everything the proxy runs with, after defaults, environment and cross-checks. */
export interface ProxyConfig extends ProxyFileConfig {
  readonly host: string;
  readonly port: number;
  /** The proxy's own credential at the broker (scope mintgate:proxy, or the admin secret). */
  readonly credential: string;
  /** The `upstream_auth` header value, prefix included; undefined when not configured. */
  readonly upstreamAuthValue: string | undefined;
  readonly logLevel: string;
}

export interface ProxyLoadOptions {
  env?: NodeJS.ProcessEnv;
  host?: string;
  port?: number;
  source?: string;
}

/** Reads and validates a proxy config file. */
export function loadProxyConfigFile(path: string, opts: ProxyLoadOptions = {}): ProxyConfig {
  return buildProxyConfig(readYamlFile(path), { ...opts, source: path });
}

export function buildProxyConfig(raw: unknown, opts: ProxyLoadOptions = {}): ProxyConfig {
  const env = opts.env ?? process.env;
  const source = opts.source ?? 'proxy config';
  const file = parseConfig(fileSchema, raw, source);
  const fail = (msg: string): never => {
    throw new ConfigError(`${source}: ${msg}`);
  };

  const host = opts.host ?? env.HOST ?? '127.0.0.1';
  const port = opts.port ?? (env.PORT ? Number(env.PORT) : 8081);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`PORT: "${env.PORT}" is not a port`);

  const credential = env[file.credential_env];
  if (!credential) fail(`credential_env: the variable ${file.credential_env} is not set (the proxy's credential at the broker)`);
  let upstreamAuthValue: string | undefined;
  if (file.upstream_auth) {
    const value = env[file.upstream_auth.value_env];
    if (!value) fail(`upstream_auth.value_env: the variable ${file.upstream_auth.value_env} is not set`);
    upstreamAuthValue = `${file.upstream_auth.prefix}${value}`;
    if (/[\r\n]/.test(upstreamAuthValue)) fail('upstream_auth: the value holds a line break');
  }

  const names = new Set<string>();
  file.routes.forEach((route, i) => {
    if (names.has(route.name)) fail(`routes[${i}].name: "${route.name}" is used twice`);
    names.add(route.name);
    if (route.block && (route.approval || route.mask.length > 0 || route.model_scope)) {
      fail(`routes[${i}]: a blocked route takes no approval, mask or model_scope (nothing is forwarded)`);
    }
  });

  const config: ProxyConfig = {
    ...file,
    broker: file.broker.replace(/\/+$/, ''),
    upstream: file.upstream.replace(/\/+$/, ''),
    host,
    port,
    credential: credential!,
    upstreamAuthValue,
    logLevel: env.LOG_LEVEL ?? 'info',
  };
  return deepFreeze(config);
}
