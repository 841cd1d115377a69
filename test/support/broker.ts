/**
 * Starts a real broker (real HTTP server on a free port) for tests, with a config built from
 * the given trust entries, an in-memory keystore, and an audit sink the test can read.
 */
import { request } from 'undici';
import { MemoryAuditSink } from '../../src/audit/sink.js';
import { buildBrokerConfig, type BrokerConfig } from '../../src/config/broker.js';
import { InMemoryKeystoreRepository, type KeystoreRepository } from '../../src/keys/keystore.js';
import { startBroker, type BrokerOverrides, type RunningBroker } from '../../src/main.js';
import type { Store } from '../../src/store/store.js';
import { freePort } from './ports.js';
import pino from 'pino';

export const ADMIN_TOKEN = 'test-admin-secret-0123456789';
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TT = {
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
} as const;

export interface TestBrokerOptions {
  /** Raw config (as in mintgate.yaml); `issuer` is filled in. A function receives the issuer. */
  config?: Record<string, unknown> | ((issuer: string) => Record<string, unknown>);
  now?: () => number;
  store?: Store;
  keystore?: KeystoreRepository;
  dev?: boolean;
  overrides?: BrokerOverrides;
  /** Extra environment for the config (e.g. MINTGATE_KEK). */
  env?: Record<string, string>;
  /** Listen on this port (a restart on the same address); default a free one. */
  port?: number;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  text: string;
}

export interface TestBroker {
  url: string;
  config: BrokerConfig;
  running: RunningBroker;
  audit: MemoryAuditSink;
  /** POST form parameters (arrays repeat the parameter). */
  postForm(path: string, params: Record<string, string | string[]>, headers?: Record<string, string>): Promise<HttpAnswer>;
  postJson(path: string, body: unknown, headers?: Record<string, string>): Promise<HttpAnswer>;
  get(path: string, headers?: Record<string, string>): Promise<HttpAnswer>;
  /** A token exchange with the given subject token; extra params override. */
  exchange(subjectToken: string, params?: Record<string, string | string[]>): Promise<HttpAnswer>;
  close(): Promise<void>;
}

export async function startTestBroker(opts: TestBrokerOptions = {}): Promise<TestBroker> {
  const port = opts.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  const config = buildBrokerConfig(
    { issuer, ...(typeof opts.config === 'function' ? opts.config(issuer) : opts.config) },
    { env: { MINTGATE_ADMIN_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'silent', ...opts.env }, host: '127.0.0.1', port, dev: opts.dev ?? false, source: 'test config' },
  );
  const audit = new MemoryAuditSink();
  const running = await startBroker(config, {
    log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    audit,
    // On Redis the keystore is the shared, encrypted one; in memory mode a private one per test.
    ...(config.store.url === 'memory' ? { keystore: opts.keystore ?? new InMemoryKeystoreRepository() } : {}),
    rotationTimer: false,
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.store ? { store: opts.store } : {}),
    ...opts.overrides,
  });
  const url = running.url;
  const call = async (method: 'GET' | 'POST', path: string, body: string | undefined, headers: Record<string, string>): Promise<HttpAnswer> => {
    const res = await request(`${url}${path}`, { method, headers, body });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.statusCode, headers: res.headers as HttpAnswer['headers'], body: parsed, text };
  };
  const postForm = (path: string, params: Record<string, string | string[]>, headers: Record<string, string> = {}) => {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) form.append(k, one);
    return call('POST', path, form.toString(), { 'content-type': 'application/x-www-form-urlencoded', ...headers });
  };
  return {
    url,
    config,
    running,
    audit,
    postForm,
    postJson: (path, body, headers = {}) => call('POST', path, JSON.stringify(body), { 'content-type': 'application/json', ...headers }),
    get: (path, headers = {}) => call('GET', path, undefined, headers),
    exchange: (subjectToken, params = {}) =>
      postForm('/oauth2/token', { grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: TT.jwt, ...params }),
    close: () => running.close(),
  };
}

/** A trust entry for an issuer, with one rule granting `inference-gateway`. */
export function trustEntry(issuer: string, extra: Record<string, unknown> = {}, rules?: unknown[]): Record<string, unknown> {
  return {
    name: 'ci',
    issuer,
    audiences: ['mintgate'],
    algorithms: ['RS256', 'ES256'],
    rules: rules ?? [
      {
        name: 'models',
        match: { repository: 'acme/*' },
        grant: { audiences: ['inference-gateway', 'eval-gateway'], scopes: ['inference:invoke', 'model:*'], max_ttl: '10m' },
      },
    ],
    ...extra,
  };
}
