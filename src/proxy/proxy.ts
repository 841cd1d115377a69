/**
 * Wiring of the companion proxy: the only place its parts are put together. The CLI
 * (`mintgate proxy`) and the tests call `startProxy`.
 *
 * Start-up does not wait for the broker: the proxy listens at once, answers 503 until it has the
 * broker's keys and revocation feed (`/_mintgate/readyz` says when), and keeps serving with what
 * it knows through a broker outage, until the feed has been silent for `feed.max_staleness`.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { ProxyConfig } from '../config/proxy.js';
import { createLogger } from '../main.js';
import { ApprovalDesk } from './approvals.js';
import { AuditSpool, type CallRecord } from './audit_spool.js';
import { ProxyUnavailable } from './errors.js';
import { FeedFollower } from './feed_follower.js';
import { proxyHandler } from './handler.js';
import { ProxyMetrics } from './metrics.js';
import { RevocationSet } from './revocations.js';
import { RouteTable } from './routes.js';
import { TokenVerifier } from './token_verifier.js';
import { Upstream } from './upstream.js';

export interface ProxyOverrides {
  log?: Logger;
  now?: () => number;
  /** Told of every call record as it is spooled (tests). */
  onRecord?: (record: CallRecord) => void;
  /** Ms between audit shipping rounds (default 1,000). */
  shipIntervalMs?: number;
  /** Ms of silence after which an open feed connection is dropped and reopened (default 45,000). */
  feedSilenceMs?: number;
}

export interface RunningProxy {
  url: string;
  server: Server;
  revocations: RevocationSet;
  spool: AuditSpool;
  feed: FeedFollower;
  /** True once the broker's keys are loaded and the revocation feed is connected. */
  ready(): boolean;
  close(): Promise<void>;
}

export async function startProxy(config: ProxyConfig, overrides: ProxyOverrides = {}): Promise<RunningProxy> {
  const log = overrides.log ?? createLogger(config.logLevel).child({ svc: 'mintgate-proxy' });
  const now = overrides.now ?? Date.now;
  const metrics = new ProxyMetrics();
  const brokerAgent = new Agent({ connectTimeout: 5_000, keepAliveTimeout: 10_000 });
  const revocations = new RevocationSet(now);
  const approvals = new ApprovalDesk({ broker: config.broker, credential: config.credential, dispatcher: brokerAgent, log, now });
  const feed = new FeedFollower({
    broker: config.broker,
    credential: config.credential,
    log,
    now,
    ...(overrides.feedSilenceMs === undefined ? {} : { silenceMs: overrides.feedSilenceMs }),
    handlers: { revocation: (r) => revocations.add(r), approval: (a) => approvals.decided(a) },
  });
  const spool = new AuditSpool({
    dir: config.record.spool_dir,
    broker: config.broker,
    credential: config.credential,
    dispatcher: brokerAgent,
    log,
    ...(overrides.shipIntervalMs === undefined ? {} : { intervalMs: overrides.shipIntervalMs }),
  });
  await spool.start();
  const upstream = new Upstream({ url: config.upstream, auth: config.upstream_auth ? { header: config.upstream_auth.header, value: config.upstreamAuthValue! } : undefined });

  // The token issuer: configured, or learnt from the broker's metadata (retried until it answers).
  let verifier: TokenVerifier | null = null;
  const makeVerifier = (issuer: string): TokenVerifier =>
    new TokenVerifier({
      issuer,
      audience: config.audience,
      jwksUri: `${config.broker}/jwks.json`,
      clockSkewSeconds: config.clock_skew,
      now,
      onKeysError: (err) => log.warn({ err: err.message }, 'could not fetch the broker keys'),
    });
  if (config.issuer) verifier = makeVerifier(config.issuer);

  const staleAfterMs = config.feed.max_staleness * 1000;
  const feedProblem = (): string | null => {
    if (!feed.synced) return 'the revocation feed has not connected yet';
    const silence = feed.silenceMs();
    const limit = feed.connected ? Math.max(staleAfterMs, overrides.feedSilenceMs ?? 45_000) : staleAfterMs;
    return silence > limit ? `the revocation feed has been silent for ${Math.round(silence / 1000)}s` : null;
  };

  const handle = proxyHandler({
    config,
    routes: new RouteTable(config.routes),
    verifier: () => verifier,
    revocations,
    feedProblem,
    approvals,
    upstream,
    record: (record) => {
      spool.append(record);
      overrides.onRecord?.(record);
    },
    metrics,
    log,
  });

  const ready = (): boolean => verifier !== null && verifier.ready && feed.connected;
  const own = ownEndpoints(metrics, ready);
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/_mintgate/')) own(req, res);
    else void handle(req, res);
  });
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0; // streamed answers and approval holds outlast node's default
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });

  let stopped = false;
  const background = async (): Promise<void> => {
    if (!verifier) {
      const issuer = await brokerIssuer(config.broker, brokerAgent).catch((err: Error) => {
        log.warn({ err: err.message }, 'broker metadata not available yet; retrying');
        return null;
      });
      if (issuer && !stopped) verifier = makeVerifier(issuer);
    }
    if (verifier && !verifier.ready) await verifier.warm();
  };
  await background();
  feed.start();
  let ticks = 0;
  const timer = setInterval(() => {
    ticks += 1;
    void background().catch((err: Error) => log.warn({ err: err.message }, 'proxy background task failed'));
    if (ticks % 30 === 0) void verifier?.warm(); // picks up keys published ahead of rotation
    if (ticks % 10 === 0) {
      revocations.prune();
      verifier?.prune();
    }
    metrics.feedConnected.set(feed.connected ? 1 : 0);
    metrics.feedSilenceSeconds.set(Number.isFinite(feed.silenceMs()) ? feed.silenceMs() / 1000 : -1);
    metrics.revocationsKnown.set(revocations.size);
    metrics.spoolBacklog.set(spool.backlog);
  }, 1_000);
  timer.unref();

  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  log.info({ url: `http://${host}:${port}`, broker: config.broker, upstream: config.upstream, routes: config.routes.length }, 'mintgate proxy listening');
  return {
    url: `http://${host}:${port}`,
    server,
    revocations,
    spool,
    feed,
    ready,
    async close() {
      stopped = true;
      clearInterval(timer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 5_000);
      await closed;
      clearTimeout(force);
      await feed.stop();
      await spool.stop();
      await upstream.close();
      await brokerAgent.close();
    },
  };
}

/** `/_mintgate/healthz|readyz|metrics`: never forwarded, never audited. */
function ownEndpoints(metrics: ProxyMetrics, ready: () => boolean) {
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'invalid_request', error_description: 'use GET' });
    if (path === '/_mintgate/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/_mintgate/readyz') return ready() ? json(res, 200, { status: 'ready' }) : json(res, 503, { status: 'not ready', ...new ProxyUnavailable('the broker keys or the revocation feed are not there yet').toJSON() });
    if (path === '/_mintgate/metrics') {
      void metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType });
        res.end(text);
      });
      return;
    }
    json(res, 404, { error: 'not_found', error_description: 'no such proxy endpoint' });
  };
}

/** The broker's issuer, from its RFC 8414 metadata. */
async function brokerIssuer(broker: string, dispatcher: Agent): Promise<string> {
  const res = await request(`${broker}/.well-known/oauth-authorization-server`, { dispatcher, headersTimeout: 5_000, bodyTimeout: 5_000 });
  const body = (await res.body.json().catch(() => null)) as { issuer?: unknown } | null;
  if (res.statusCode !== 200 || typeof body?.issuer !== 'string') throw new Error(`broker metadata: status ${res.statusCode}`);
  return body.issuer;
}
