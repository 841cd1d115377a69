/**
 * Broker, proxy and upstream together on free ports, as a user runs them: a real broker trusting
 * a local issuer, a recording model server, and the proxy between a client and that server.
 * Tokens come from real exchanges; `forge` signs arbitrary claims with the broker's own current
 * key (for the expired, not-yet-valid, wrong-typ... rows).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactSign } from 'jose';
import pino from 'pino';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { buildProxyConfig } from '../../src/config/proxy.js';
import type { CallRecord } from '../../src/proxy/audit_spool.js';
import { startProxy, type ProxyOverrides, type RunningProxy } from '../../src/proxy/proxy.js';
import { ADMIN_TOKEN, startTestBroker, trustEntry, type HttpAnswer, type TestBroker } from './broker.js';
import { startLocalIssuer, type LocalIssuer } from './local_issuer.js';
import { freePort } from './ports.js';
import { startRecordingUpstream, type RecordingUpstream } from './upstream.js';

export const ALL_MASKS = ['email', 'credit_card', 'us_ssn', 'aws_access_key', 'private_key', 'jwt', 'bearer_token', 'api_key', 'iban', 'phone'];

/** The proxy config of CONTRACT section 7, pointed at the given broker and upstream. */
export function contractProxyConfig(broker: string, upstream: string, spoolDir: string): Record<string, unknown> {
  return {
    broker,
    audience: 'inference-gateway',
    credential_env: 'MINTGATE_PROXY_TOKEN',
    upstream,
    record: { bodies: true, max_bytes: 65536, spool_dir: spoolDir },
    feed: { max_staleness: '30s' },
    block_requests: [
      { where: 'body', pattern: '(?i)cat\\s+/etc/(passwd|shadow)' },
      { where: 'path', pattern: '\\.\\./' },
      { where: 'header:x-debug', pattern: '^drop-tables' },
    ],
    routes: [
      {
        name: 'chat',
        method: 'POST',
        path: '/v1/chat/completions',
        scopes: ['inference:invoke'],
        model_scope: 'body.model',
        mask: ALL_MASKS,
        mask_fields: ['password', 'api_key', 'secret', 'token'],
      },
      { name: 'models', method: 'GET', path: '/v1/models', scopes: ['inference:invoke'] },
      { name: 'echo', path: '/v1/echo/**', scopes: ['inference:invoke'] },
      { name: 'export', method: 'POST', path: '/v1/models/*/export', scopes: ['model:export'], approval: { wait: '3s' } },
      { name: 'secrets', path: '/secrets/**', block: true },
    ],
  };
}

export interface RigOptions {
  /** Edits the proxy config before it is built. */
  proxyConfig?: (raw: Record<string, unknown>) => Record<string, unknown>;
  proxyOverrides?: ProxyOverrides;
  /** SSE heartbeat of the broker's stream (default 200 ms, so silence shows quickly). */
  heartbeatMs?: number;
}

export interface ProxyRig {
  idp: LocalIssuer;
  broker: TestBroker;
  upstream: RecordingUpstream;
  proxy: RunningProxy;
  spoolDir: string;
  /** Records as the proxy spooled them. */
  records: CallRecord[];
  /** A job token from a real exchange (default scopes: inference:invoke model:*). */
  token(scope?: string, claims?: Record<string, unknown>): Promise<string>;
  /** Signs `claims` (merged over valid defaults) with the broker's current key; `header` merged too. */
  forge(claims?: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  call(method: string, path: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<HttpAnswer>;
  /** Stops and restarts the broker on the same port, with the same keys (an outage). */
  stopBroker(): Promise<void>;
  startBroker(): Promise<void>;
  close(): Promise<void>;
}

let runCounter = 0;

export async function startProxyRig(opts: RigOptions = {}): Promise<ProxyRig> {
  const idp = await startLocalIssuer();
  const brokerPort = await freePort();
  const heartbeatMs = opts.heartbeatMs ?? 200;
  const brokerConfig = (): Record<string, unknown> => ({
    trust: [
      trustEntry(idp.issuer, {}, [
        {
          name: 'models',
          match: { repository: 'acme/*' },
          job: 'claims.run_id',
          grant: { audiences: ['inference-gateway'], scopes: ['inference:invoke', 'model:*', 'model:llama', 'model:export'], max_ttl: '10m' },
        },
      ]),
    ],
  });
  const { InMemoryKeystoreRepository } = await import('../../src/keys/keystore.js');
  const { MemoryStore } = await import('../../src/store/memory.js');
  // Kept across a broker restart: the same keys and the same revocations, as on Redis.
  const keystore = new InMemoryKeystoreRepository();
  const store = new MemoryStore();
  const keepStoreOpen = Object.assign(Object.create(store) as typeof store, { close: async () => undefined });
  const launchBroker = () =>
    startTestBroker({ config: brokerConfig, keystore, store: keepStoreOpen, port: brokerPort, overrides: { heartbeatMs } });
  let broker = await launchBroker();
  const upstream = await startRecordingUpstream();
  const spoolDir = await mkdtemp(join(tmpdir(), 'mintgate-spool-'));
  const proxyPort = await freePort();
  const raw = contractProxyConfig(broker.url, upstream.url, spoolDir);
  const config = buildProxyConfig(opts.proxyConfig ? opts.proxyConfig(raw) : raw, {
    env: { MINTGATE_PROXY_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'silent' },
    host: '127.0.0.1',
    port: proxyPort,
  });
  const records: CallRecord[] = [];
  const proxy = await startProxy(config, {
    log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    shipIntervalMs: 200,
    feedSilenceMs: 2_000,
    ...opts.proxyOverrides,
    onRecord: (r) => {
      records.push(r);
      opts.proxyOverrides?.onRecord?.(r);
    },
  });
  await waitFor(() => proxy.ready(), 10_000, 'the proxy to become ready');

  const rig: ProxyRig = {
    idp,
    get broker() {
      return broker;
    },
    upstream,
    proxy,
    spoolDir,
    records,
    async token(scope = 'inference:invoke model:*', claims = {}) {
      const assertion = await idp.github({ run_id: `run-${++runCounter}`, ...claims });
      const answer = await broker.exchange(assertion, { audience: 'inference-gateway', scope });
      if (answer.status !== 200) throw new Error(`exchange failed: ${answer.status} ${answer.text}`);
      return answer.body.access_token as string;
    },
    async forge(claims = {}, header = {}) {
      const key = broker.running.context.keys.signingKey();
      const now = Math.floor(Date.now() / 1000);
      const payload = {
        iss: broker.config.issuer,
        sub: 'repo:acme/models:ref:refs/heads/main',
        aud: 'inference-gateway',
        iat: now,
        nbf: now,
        exp: now + 300,
        jti: `forged-${++runCounter}`,
        client_id: 'ci/models',
        scope: 'inference:invoke model:*',
        job_id: `forged-job-${runCounter}`,
        ...claims,
      };
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete (payload as Record<string, unknown>)[k];
      return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header })
        .sign(key.key);
    },
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
      let body: string | undefined;
      if (o.body !== undefined) {
        body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      // node:http sends the path as given (undici resolves dot segments before sending).
      const res = await rawRequest(proxy.url, method, path, headers, body);
      const text = res.text;
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* not JSON */
      }
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    async stopBroker() {
      await broker.close();
    },
    async startBroker() {
      broker = await launchBroker();
    },
    async close() {
      await proxy.close();
      await broker.close().catch(() => undefined);
      await store.close();
      await upstream.close();
      await idp.close();
      await rm(spoolDir, { recursive: true, force: true });
    },
  };
  return rig;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** One HTTP request with node:http, the path untouched. */
export function rawRequest(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: HttpAnswer['headers']; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers, agent: keepAlive });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const keepAlive = new HttpAgent({ keepAlive: true });
