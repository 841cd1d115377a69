/**
 * Wiring: the only place where the broker's parts are put together (STYLE.md). The CLI and the
 * tests call `startBroker`; everything else receives its collaborators as arguments.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { JWK } from 'jose';
import pino, { type Logger } from 'pino';
import { LogAuditSink, type AuditSink } from './audit/sink.js';
import { createBrokerApp } from './broker/app.js';
import { tokenEndpoint } from './broker/token.js';
import type { BrokerContext } from './broker/context.js';
import { BrokerMetrics } from './broker/metrics.js';
import { RevocationFeed } from './broker/revocation_feed.js';
import type { BrokerConfig } from './config/broker.js';
import { DevIssuer } from './dev/dev_issuer.js';
import { JwksCache } from './exchange/assertions/jwks_cache.js';
import { OwnTokenVerifier } from './exchange/assertions/mintgate.js';
import { Minter } from './exchange/mint.js';
import { compileTrust } from './exchange/policy.js';
import { perMinuteLimit, type RateLimit } from './exchange/rate_limit.js';
import { TokenExchange } from './exchange/token_exchange.js';
import { KeyManager } from './keys/key_manager.js';
import { FileKeystoreRepository, type KeystoreRepository } from './keys/keystore.js';
import { MemoryStore } from './store/memory.js';
import { createRedisClient, redactRedisUrl, RedisKeystoreRepository, RedisStore, waitUntilReady, type RedisClient } from './store/redis.js';
import type { Store } from './store/store.js';

/** Seconds an issued-token record outlives its token (for tracing after expiry). */
const RECORD_RETENTION_SECONDS = 24 * 3600;

export interface BrokerOverrides {
  now?: () => number;
  log?: Logger;
  store?: Store;
  keystore?: KeystoreRepository;
  audit?: AuditSink;
  limiter?: RateLimit;
  addressLimiter?: RateLimit;
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

/** The store, keystore and rate limiters: those given (tests), the rest for `store.url`. */
interface StateParts {
  store: Store;
  keystore: KeystoreRepository;
  limiter: RateLimit;
  addressLimiter: RateLimit;
}

async function stateFor(config: BrokerConfig, log: Logger, now: () => number, given: Partial<StateParts>): Promise<StateParts> {
  if (given.store && given.keystore && given.limiter && given.addressLimiter) return given as StateParts;
  const { exchanges_per_subject_per_minute: perSubject, exchanges_per_address_per_minute: perAddress } = config.limits;
  if (config.store.url === 'memory') {
    return {
      store: given.store ?? new MemoryStore({ now }),
      keystore: given.keystore ?? new FileKeystoreRepository(config.keys.dir),
      limiter: given.limiter ?? perMinuteLimit('subject', perSubject),
      addressLimiter: given.addressLimiter ?? perMinuteLimit('address', perAddress),
    };
  }
  const where = redactRedisUrl(config.store.url);
  let lastWarning = 0;
  const client: RedisClient = createRedisClient(config.store.url, {
    onError: (err) => {
      // ioredis reports every failed reconnection; one line every 10 s is enough.
      if (Date.now() - lastWarning > 10_000) {
        lastWarning = Date.now();
        log.warn({ store: where, err: err.message }, 'redis unreachable; exchanges answer 503 until it is back');
      }
    },
  });
  // Start-up waits for Redis (a broker without its store has nothing to serve); at run time a
  // lost connection only fails requests closed until the client reconnects by itself.
  for (;;) {
    try {
      await waitUntilReady(client, 5_000);
      break;
    } catch {
      log.warn({ store: where }, 'waiting for redis');
    }
  }
  return {
    store: given.store ?? new RedisStore(client, 'mintgate', { now }),
    keystore: given.keystore ?? new RedisKeystoreRepository(client, config.kek!, 'mintgate'),
    limiter: given.limiter ?? perMinuteLimit('subject', perSubject, client),
    addressLimiter: given.addressLimiter ?? perMinuteLimit('address', perAddress, client),
  };
}

export async function createBrokerContext(config: BrokerConfig, overrides: BrokerOverrides = {}): Promise<BrokerContext> {
  const now = overrides.now ?? Date.now;
  const log = overrides.log ?? createLogger(config.logLevel);
  const { store, keystore, limiter, addressLimiter } = await stateFor(config, log, now, overrides);
  const keys = new KeyManager(keystore, config.keys, now);
  await keys.init();
  if (overrides.rotationTimer ?? true) keys.start(2_000, (err) => log.warn({ err: err.message }, 'key schedule: could not check or rotate keys'));

  const devIssuer = config.dev ? await DevIssuer.create(config.issuer, now) : undefined;
  const staticKeys: Record<string, { keys: JWK[] }> = devIssuer ? { dev: devIssuer.jwks() } : {};
  const trust = compileTrust(config.trust, staticKeys);
  const jwks = new JwksCache({
    now,
    ...(overrides.jwksCooldownMs === undefined ? {} : { cooldownMs: overrides.jwksCooldownMs }),
    onFetchError: (issuer, err) => log.warn({ issuer, err: err.message }, 'could not fetch issuer keys'),
    onKeyDropped: (issuer, kid, reason) => log.warn({ issuer, kid, reason }, 'ignoring an unusable key in the issuer\'s JWKS'),
  });
  const ownTokens = new OwnTokenVerifier({ issuer: config.issuer, keys, store, clockSkew: config.tokens.clock_skew, now });
  const audit = overrides.audit ?? new LogAuditSink(log);
  const minter = new Minter({ issuer: config.issuer, keys, store, recordRetention: RECORD_RETENTION_SECONDS, now });
  const exchange = new TokenExchange({ config, trust, jwks, store, ownTokens, minter, limiter, audit, log, now });
  const feed = new RevocationFeed(store, log);
  // express's own rules for req.ip (proxy-addr), so both response paths agree on who called.
  const trusted = config.limits.trusted_proxies;
  const trustsProxy = trusted.length > 0 ? proxyAddr.compile([...trusted]) : () => false;
  const clientAddress = (req: IncomingMessage): string => proxyAddr(req, trustsProxy);
  return { config, store, keys, exchange, ownTokens, audit, addressLimiter, clientAddress, metrics: new BrokerMetrics(), feed, heartbeatMs: overrides.heartbeatMs ?? 15_000, log, now, devIssuer };
}

/** Starts the broker on config.host:config.port (port 0: a free one). */
export async function startBroker(config: BrokerConfig, overrides: BrokerOverrides = {}): Promise<RunningBroker> {
  const context = await createBrokerContext(config, overrides);
  const app = createBrokerApp(context);
  const token = tokenEndpoint(context);
  // The token endpoint skips express altogether (the hot path); everything else is the app.
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/oauth2/token') void token(req, res);
    else app(req, res);
  });
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
    /** Stops accepting, ends the revocation streams, lets requests in flight finish (5 s at most). */
    async close() {
      context.keys.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      context.feed.stop();
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 5_000);
      await closed;
      clearTimeout(force);
      await context.store.close();
    },
  };
}
