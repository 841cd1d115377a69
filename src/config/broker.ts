/**
 * The broker's configuration: `mintgate.yaml`, parsed once at start-up into a frozen object.
 * Unknown keys, bad values and impossible combinations stop start-up with a message that
 * names the key (`ConfigError`). Durations are held in seconds from here on.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError, deepFreeze, duration, parseConfig, readYamlFile } from './common.js';

/** express "trust proxy" entries: an address, a CIDR, or one of the named ranges. */
function isProxySpec(text: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(text)) return true;
  const [address, prefix, ...rest] = text.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

export { ConfigError };

const nonEmpty = z.string().trim().min(1, 'must not be empty');
const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'use 1-64 of A-Z a-z 0-9 _ . -');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** Asymmetric algorithms only: `none` and HMAC are never acceptable for third-party assertions. */
export const ASSERTION_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export const SIGNING_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256'] as const;

const matchValue = z.union([nonEmpty, z.array(nonEmpty).min(1)]);

const grantSchema = z.strictObject({
  audiences: z.array(nonEmpty).min(1),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope is printable ASCII without space, " or \\')).min(1),
  max_ttl: duration.optional(),
});

const ruleSchema = z.strictObject({
  name,
  match: z.record(nonEmpty, matchValue).default({}),
  condition: nonEmpty.optional(),
  subject: nonEmpty.optional(),
  job: nonEmpty.optional(),
  grant: grantSchema,
});

const trustSchema = z.strictObject({
  name,
  type: z.enum(['oidc', 'saml']).default('oidc'),
  issuer: nonEmpty,
  jwks_uri: httpUrl.optional(),
  audiences: z.array(nonEmpty).min(1),
  algorithms: z.array(z.enum(ASSERTION_ALGORITHMS)).min(1).default(['RS256', 'ES256']),
  rules: z.array(ruleSchema).min(1),
});

const fileSchema = z.strictObject({
  issuer: httpUrl.optional(),
  store: z.strictObject({ url: nonEmpty.default('memory') }).default({ url: 'memory' }),
  tokens: z
    .strictObject({
      default_ttl: duration.default(300),
      max_ttl: duration.default(900),
      clock_skew: duration.default(30),
      job_revocation_ttl: duration.default(86400),
    })
    .default({ default_ttl: 300, max_ttl: 900, clock_skew: 30, job_revocation_ttl: 86400 }),
  keys: z
    .strictObject({
      dir: nonEmpty.default('keys'),
      alg: z.enum(SIGNING_ALGORITHMS).default('ES256'),
      rotate_every: duration.default(86400),
      publish_ahead: duration.default(300),
      retain_after: duration.default(1200),
    })
    .default({ dir: 'keys', alg: 'ES256', rotate_every: 86400, publish_ahead: 300, retain_after: 1200 }),
  limits: z
    .strictObject({
      exchanges_per_subject_per_minute: z.number().int().nonnegative().default(600),
      exchanges_per_address_per_minute: z.number().int().nonnegative().default(3000),
      /** Load balancers whose X-Forwarded-For names the client (express "trust proxy" values). */
      trusted_proxies: z.array(z.string().refine(isProxySpec, 'use an IP, an IP/prefix, loopback, linklocal or uniquelocal')).default([]),
    })
    .default({ exchanges_per_subject_per_minute: 600, exchanges_per_address_per_minute: 3000, trusted_proxies: [] }),
  trust: z.array(trustSchema).default([]),
});

export type BrokerFileConfig = z.infer<typeof fileSchema>;
export type TrustEntryConfig = z.infer<typeof trustSchema>;
export type TrustRuleConfig = z.infer<typeof ruleSchema>;

/** Everything the broker runs with, after defaults, environment and cross-checks. */
export interface BrokerConfig extends Omit<BrokerFileConfig, 'issuer'> {
  readonly issuer: string;
  readonly host: string;
  readonly port: number;
  /** Dev mode (CONTRACT section 6): the dev issuer and `/dev` routes exist only when true. */
  readonly dev: boolean;
  /** The bootstrap admin secret (`MINTGATE_ADMIN_TOKEN`); undefined disables it. */
  readonly adminToken: string | undefined;
  /** Key-encryption key for keys kept in Redis (`MINTGATE_KEK`), 32 bytes. */
  readonly kek: Uint8Array | undefined;
  readonly logLevel: string;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  host?: string;
  port?: number;
  /** Where the text came from, for messages. */
  source?: string;
  dev?: boolean;
}

/** Reads and validates a config file. */
export function loadBrokerConfigFile(path: string, opts: LoadOptions = {}): BrokerConfig {
  return buildBrokerConfig(readYamlFile(path), { ...opts, source: path });
}

/** Validates an already-parsed config object (also used for the generated dev config). */
export function buildBrokerConfig(raw: unknown, opts: LoadOptions = {}): BrokerConfig {
  const env = opts.env ?? process.env;
  const source = opts.source ?? 'config';
  const file = parseConfig(fileSchema, raw, source);

  const host = opts.host ?? env.HOST ?? '127.0.0.1';
  const port = opts.port ?? (env.PORT ? Number(env.PORT) : 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`PORT: "${env.PORT}" is not a port`);
  const issuer = (file.issuer ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '');
  const store = { url: env.REDIS_URL ?? file.store.url };
  const keys = { ...file.keys, dir: env.MINTGATE_KEYS_DIR ?? file.keys.dir };
  const kek = env.MINTGATE_KEK ? decodeKek(env.MINTGATE_KEK) : undefined;

  const config: BrokerConfig = {
    ...file,
    issuer,
    host,
    port,
    store,
    keys,
    dev: opts.dev ?? false,
    adminToken: env.MINTGATE_ADMIN_TOKEN || undefined,
    kek,
    logLevel: env.LOG_LEVEL ?? 'info',
  };
  checkCombinations(config, source);
  return deepFreeze(config);
}

function checkCombinations(config: BrokerConfig, source: string): void {
  const fail = (msg: string): never => {
    throw new ConfigError(`${source}: ${msg}`);
  };
  const { tokens, keys } = config;
  if (tokens.default_ttl > tokens.max_ttl) fail('tokens.default_ttl: must not exceed tokens.max_ttl');
  // DESIGN "Signing keys": a retiring key must stay published until every token it signed expired.
  if (keys.retain_after < tokens.max_ttl + tokens.clock_skew) {
    fail(`keys.retain_after: must be at least tokens.max_ttl + tokens.clock_skew (${tokens.max_ttl + tokens.clock_skew}s)`);
  }
  if (keys.publish_ahead >= keys.rotate_every) fail('keys.publish_ahead: must be shorter than keys.rotate_every');
  if (!/^(memory|rediss?:\/\/|redis-sentinel:\/\/|redis-cluster:\/\/)/.test(config.store.url)) {
    fail(`store.url: "${config.store.url.replace(/\/\/[^@/]*@/, '//***@')}" is not memory or a redis URL`);
  }
  // On Redis the keystore is shared by every broker, encrypted: no KEK, no shared keys.
  if (config.store.url !== 'memory' && !config.kek) fail('MINTGATE_KEK: required with a Redis store (base64 of 32 random bytes)');
  const entryNames = new Set<string>();
  const issuers = new Set<string>();
  config.trust.forEach((entry, i) => {
    if (entryNames.has(entry.name)) fail(`trust[${i}].name: "${entry.name}" is used twice`);
    entryNames.add(entry.name);
    if (issuers.has(entry.issuer)) fail(`trust[${i}].issuer: "${entry.issuer}" is trusted twice`);
    issuers.add(entry.issuer);
    if (entry.type === 'saml') fail(`trust[${i}].type: saml trust is not available in this version`);
    if (!entry.jwks_uri && !/^https?:\/\//.test(entry.issuer)) {
      fail(`trust[${i}].issuer: an OIDC issuer without jwks_uri must be an http(s) URL (discovery)`);
    }
    const ruleNames = new Set<string>();
    entry.rules.forEach((rule, j) => {
      const at = `trust[${i}].rules[${j}]`;
      if (ruleNames.has(rule.name)) fail(`${at}.name: "${rule.name}" is used twice`);
      ruleNames.add(rule.name);
      if (rule.grant.max_ttl !== undefined && rule.grant.max_ttl > tokens.max_ttl) {
        fail(`${at}.grant.max_ttl: must not exceed tokens.max_ttl`);
      }
    });
  });
}

function decodeKek(text: string): Uint8Array {
  const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length !== 32) throw new ConfigError('MINTGATE_KEK: must be base64 or base64url of exactly 32 random bytes');
  return new Uint8Array(bytes);
}
