/**
 * What the proxy rows ("proxy → upstream ...", "revocation → rejection ...") stand on, each part
 * in its own process: a broker (bench/servers/broker.ts, memory store, the GitHub trust rule of
 * the exchange rows, a bootstrap admin secret), the demo model server as the upstream
 * (bench/servers/upstream.ts), and as many proxies (bench/servers/proxy.ts) as a row asks for,
 * all following that broker. Job tokens come from real RFC 8693 exchanges at that broker, with
 * assertions from a local GitHub-shaped issuer in this process. The proxies run bench/support/proxy_config.ts's config (CONTRACT section 7's chat route).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { DEMO_REPLY, DEMO_SECRETS } from '../../src/dev/demo_model.js';
import { DETECTOR_TYPES } from '../../src/proxy/mask/detectors.js';
import { startLocalIssuer, type LocalIssuer } from '../../test/support/local_issuer.js';
import type { BrokerSpec } from '../servers/broker.js';
import { startChild, type ChildServer } from './child.js';
import { AUDIENCE, ID_TOKEN_TYPE, SCOPE, TOKEN_EXCHANGE, githubTrust } from './github.js';
import { CHAT_PATH, MASK_TYPES, type ProxySpec } from './proxy_config.js';

/** The model the chat requests name; the exchange rule grants `model:llama-3-8b`. */
export const MODEL = 'llama-3-8b';

/** One non-stream chat request (the same bytes to every target). */
export const CHAT_BODY = JSON.stringify({
  model: MODEL,
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Show me the customer record for account 42.' },
  ],
});

/** Job tokens are asked for this long (the rule's max_ttl), so none expires during a run. */
const TOKEN_SECONDS = 600;

export interface BenchProxy {
  url: string;
  child: ChildServer<{ url: string }>;
  /** Stops the proxy and removes its spool directory. */
  stop(): Promise<void>;
}

export interface ProxyStack {
  brokerUrl: string;
  upstreamUrl: string;
  broker: ChildServer<{ url: string }>;
  upstream: ChildServer<{ url: string }>;
  /** The bootstrap admin secret of this run's broker (also every proxy's credential). */
  adminToken: string;
  /** A fresh job token from a real exchange (ES256, aud inference-gateway, 10 minutes). */
  mintToken(): Promise<{ token: string; jti: string }>;
  /** Starts one more proxy following this broker, in front of this upstream. */
  startProxy(opts: { mask: boolean; profileName?: string }): Promise<BenchProxy>;
  close(): Promise<void>;
}

/** Starts the issuer, broker and upstream; closing the stack stops every proxy started from it too. */
export async function startProxyStack(): Promise<ProxyStack> {
  if (DETECTOR_TYPES.length !== MASK_TYPES.length || !MASK_TYPES.every((t) => (DETECTOR_TYPES as readonly string[]).includes(t))) {
    throw new Error(`the proxy's mask types (${DETECTOR_TYPES.join(', ')}) are no longer CONTRACT section 7's ten`);
  }
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const fn of closers.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    const idp: LocalIssuer = await startLocalIssuer();
    closers.push(() => idp.close());
    const adminToken = randomBytes(24).toString('base64url');
    const spec: BrokerSpec = { trust: [githubTrust(idp.issuer)], adminToken };
    const broker = await startChild<{ url: string }>('servers/broker.ts', { env: { BENCH_BROKER_SPEC: JSON.stringify(spec) } });
    closers.push(() => broker.stop());
    const upstream = await startChild<{ url: string }>('servers/upstream.ts');
    closers.push(() => upstream.stop());
    const brokerUrl = broker.info.url;

    const mintToken = async () => {
      const assertion = await idp.github();
      const form = new URLSearchParams({
        grant_type: TOKEN_EXCHANGE,
        subject_token: assertion,
        subject_token_type: ID_TOKEN_TYPE,
        audience: AUDIENCE,
        scope: SCOPE,
        expires_in: String(TOKEN_SECONDS),
      });
      const res = await request(`${brokerUrl}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`exchange answered ${res.statusCode}: ${text.slice(0, 300)}`);
      const token = (JSON.parse(text) as { access_token?: string }).access_token;
      if (typeof token !== 'string') throw new Error('exchange: no access_token');
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { jti?: string };
      if (typeof claims.jti !== 'string') throw new Error('exchange: the job token has no jti');
      return { token, jti: claims.jti };
    };

    const startProxy = async (opts: { mask: boolean; profileName?: string }): Promise<BenchProxy> => {
      const spoolDir = await mkdtemp(join(tmpdir(), 'mintgate-bench-spool-'));
      const proxySpec: ProxySpec = { broker: brokerUrl, upstream: upstream.info.url, spoolDir, mask: opts.mask };
      let child: ChildServer<{ url: string }>;
      try {
        child = await startChild<{ url: string }>('servers/proxy.ts', {
          env: { BENCH_PROXY_SPEC: JSON.stringify(proxySpec), MINTGATE_PROXY_TOKEN: adminToken },
          ...(opts.profileName ? { profileName: opts.profileName } : {}),
        });
      } catch (err) {
        await rm(spoolDir, { recursive: true, force: true });
        throw err;
      }
      let stopped: Promise<void> | undefined;
      const stop = () =>
        (stopped ??= child.stop().finally(() => rm(spoolDir, { recursive: true, force: true })));
      closers.push(stop);
      return { url: child.info.url, child, stop };
    };

    return { brokerUrl, upstreamUrl: upstream.info.url, broker, upstream, adminToken, mintToken, startProxy, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** One request as every load run sends it: POST, JSON, with (or without) the job token. */
export function chatHeaders(token: string | undefined): Record<string, string> {
  return { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) };
}

/** Posts the chat request once; the status and the reply text (the assistant message). */
export async function chatOnce(base: string, token: string | undefined): Promise<{ status: number; content: string; text: string }> {
  const res = await request(`${base}${CHAT_PATH}`, { method: 'POST', headers: chatHeaders(token), body: CHAT_BODY });
  const text = await res.body.text();
  let content = '';
  try {
    content = String((JSON.parse(text) as { choices?: Array<{ message?: { content?: unknown } }> }).choices?.[0]?.message?.content ?? '');
  } catch {
    // not JSON: the caller reports the status and text
  }
  return { status: res.statusCode, content, text };
}

/**
 * Checks what a target answers before any load: the demo reply as it is (`plain`), or with every
 * planted secret masked (`masked`), and, behind a mintgate proxy, a 401 without the token.
 */
export async function checkTarget(what: string, base: string, token: string, expect: 'plain' | 'masked', proxied: boolean): Promise<void> {
  const answer = await chatOnce(base, token);
  if (answer.status !== 200) throw new Error(`${what}: the chat request answered ${answer.status}: ${answer.text.slice(0, 300)}`);
  if (expect === 'plain') {
    if (answer.content !== DEMO_REPLY) throw new Error(`${what}: the reply is not the demo model's, unchanged`);
  } else {
    const leaked = Object.entries(DEMO_SECRETS).filter(([, secret]) => answer.text.includes(secret)).map(([type]) => type);
    if (leaked.length > 0) throw new Error(`${what}: planted secrets came back unmasked: ${leaked.join(', ')}`);
    const missing = MASK_TYPES.filter((t) => !answer.content.includes(`[MASKED:${t}]`));
    if (missing.length > 0) throw new Error(`${what}: no [MASKED:<type>] label for ${missing.join(', ')}`);
  }
  if (proxied) {
    const refused = await chatOnce(base, undefined);
    if (refused.status !== 401) throw new Error(`${what}: a request without a token answered ${refused.status}, expected 401`);
  }
}
