/**
 * Wiring: the only place where the broker's parts are put together (STYLE.md). The CLI and the
 * tests call `startBroker`; everything else receives its collaborators as arguments.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { JWK } from 'jose';
import pino, { type Logger } from 'pino';
import { LogAuditSink, type AuditSink } from './audit/sink.js';
import { createBrokerApp } from './broker/app.js';
import type { BrokerContext } from './broker/context.js';
import { BrokerMetrics } from './broker/metrics.js';
import { RevocationFeed } from './broker/revocation_feed.js';
import type { BrokerConfig } from './config/broker.js';
import { DevIssuer } from './dev/dev_issuer.js';
import { JwksCache } from './exchange/assertions/jwks_cache.js';
import { OwnTokenVerifier } from './exchange/assertions/mintgate.js';
import { Minter } from './exchange/mint.js';
import { compileTrust } from './exchange/policy.js';
import { memorySubjectLimiter, type SubjectLimiter } from './exchange/rate_limit.js';
import { TokenExchange } from './exchange/token_exchange.js';
import { KeyManager } from './keys/key_manager.js';
import { FileKeystoreRepository, type KeystoreRepository } from './keys/keystore.js';
import { MemoryStore } from './store/memory.js';
import type { Store } from './store/store.js';

/** Seconds an issued-token record outlives its token (for tracing after expiry). */
const RECORD_RETENTION_SECONDS = 24 * 3600;

export interface BrokerOverrides {
  now?: () => number;
  log?: Logger;
  store?: Store;
  keystore?: KeystoreRepository;
  audit?: AuditSink;
  limiter?: SubjectLimiter;
  /** Passed to the JWKS cache (tests shorten cooldowns). */
  jwksCooldownMs?: number;
  /** Start the key rotation timer (default true). */
  rotationTimer?: boolean;
  /** Milliseconds between SSE heartbeats on the revocation stream (default 15,000). */
  heartbeatMs?: number;
}

export interface RunningBroker {
  url: string;
  server: Server;
  context: BrokerContext;
  close(): Promise<void>;
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { svc: 'mintgate' },
    // Defence in depth: field names that could ever hold a credential are never printed.
    redact: { paths: ['*.authorization', '*.token', '*.subject_token', '*.access_token', '*.password', '*.secret', 'headers'], censor: '[redacted]' },
  });
}

export async function createBrokerContext(config: BrokerConfig, overrides: BrokerOverrides = {}): Promise<BrokerContext> {
  const now = overrides.now ?? Date.now;
  const log = overrides.log ?? createLogger(config.logLevel);
  if (config.store.url !== 'memory' && !overrides.store) {
    throw new Error(`store.url ${config.store.url.replace(/\/\/[^@/]*@/, '//***@')}: the Redis store is not available in this build; use memory`);
  }
  const store = overrides.store ?? new MemoryStore({ now });
  const keys = new KeyManager(overrides.keystore ?? new FileKeystoreRepository(config.keys.dir), config.keys, now);
  await keys.init();
  if (overrides.rotationTimer ?? true) keys.start();

  const devIssuer = config.dev ? await DevIssuer.create(config.issuer, now) : undefined;
  const staticKeys: Record<string, { keys: JWK[] }> = devIssuer ? { dev: devIssuer.jwks() } : {};
  const trust = compileTrust(config.trust, staticKeys);
  const jwks = new JwksCache({
    now,
    ...(overrides.jwksCooldownMs === undefined ? {} : { cooldownMs: overrides.jwksCooldownMs }),
    onFetchError: (issuer, err) => log.warn({ issuer, err: err.message }, 'could not fetch issuer keys'),
  });
  const ownTokens = new OwnTokenVerifier({ issuer: config.issuer, keys, store, clockSkew: config.tokens.clock_skew, now });
  const audit = overrides.audit ?? new LogAuditSink(log);
  const minter = new Minter({ issuer: config.issuer, keys, store, recordRetention: RECORD_RETENTION_SECONDS, now });
  const limiter = overrides.limiter ?? memorySubjectLimiter(config.limits.exchanges_per_subject_per_minute);
  const exchange = new TokenExchange({ config, trust, jwks, store, ownTokens, minter, limiter, audit, log, now });
  const feed = new RevocationFeed(store, log);
  return { config, store, keys, exchange, ownTokens, audit, metrics: new BrokerMetrics(), feed, heartbeatMs: overrides.heartbeatMs ?? 15_000, log, now, devIssuer };
}

/** Starts the broker on config.host:config.port (port 0: a free one). */
export async function startBroker(config: BrokerConfig, overrides: BrokerOverrides = {}): Promise<RunningBroker> {
  const context = await createBrokerContext(config, overrides);
  const app = createBrokerApp(context);
  const server = createServer(app);
  server.keepAliveTimeout = 65_000; // outlive common load-balancer idle timeouts
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    url: `http://${host}:${port}`,
    server,
    context,
    async close() {
      context.keys.stop();
      context.feed.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await context.store.close();
    },
  };
}
