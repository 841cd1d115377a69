/** What the broker's endpoints share; built once in src/main.ts. */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/sink.js';
import type { BrokerConfig } from '../config/broker.js';
import type { DevIssuer } from '../dev/dev_issuer.js';
import type { OwnTokenVerifier } from '../exchange/assertions/mintgate.js';
import type { RateLimit } from '../exchange/rate_limit.js';
import type { TokenExchange } from '../exchange/token_exchange.js';
import type { KeyManager } from '../keys/key_manager.js';
import type { Store } from '../store/store.js';
import type { BrokerMetrics } from './metrics.js';
import type { RevocationFeed } from './revocation_feed.js';

export interface BrokerContext {
  config: BrokerConfig;
  store: Store;
  keys: KeyManager;
  exchange: TokenExchange;
  ownTokens: OwnTokenVerifier;
  audit: AuditSink;
  /** Token requests per client address (checked before any parsing). */
  addressLimiter: RateLimit;
  /** The client's address: the socket's, or the one a trusted load balancer names (as req.ip). */
  clientAddress(req: IncomingMessage): string;
  metrics: BrokerMetrics;
  /** The one follower of the revocation feed, shared by every SSE stream. */
  feed: RevocationFeed;
  /** Milliseconds between SSE heartbeats. */
  heartbeatMs: number;
  log: Logger;
  now: () => number;
  /** Present in dev mode only. */
  devIssuer: DevIssuer | undefined;
}
