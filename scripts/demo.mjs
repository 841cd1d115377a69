#!/usr/bin/env node
// `npm run demo` (CONTRACT section 1): a dev-mode broker, the demo model server and the proxy in
// front of it, each on a free port, then a scripted CI job: get an assertion, exchange it, narrow
// it, call the model through the proxy (masking visible, JSON and stream), try a blocked route
// and a model outside the token's scope, revoke the job, see the proxy refuse it.
// A build without `mintgate proxy` runs the broker steps only, and says so loudly.
// (`audit trace` joins this script with its issue.)
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { buildBrokerConfig } from '../dist/config/broker.js';
import { devConfig } from '../dist/config/dev.js';
import { DEMO_SECRETS, startDemoModelServer } from '../dist/dev/demo_model.js';
import { startBroker, createLogger } from '../dist/main.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const PROXY_EXAMPLE = fileURLToPath(new URL('../examples/dev/proxy.yaml', import.meta.url));
/** How long the proxy may take to report ready (JWKS loaded, revocation feed connected). */
const PROXY_READY_MS = 20_000;
/** How long a revocation may take to reach the proxy (the contract says within 1 s). */
const REVOCATION_MS = 3_000;

/** A failed expectation: printed as `demo failed: ...`, exit status 1. */
class DemoError extends Error {}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- clean-up: every server and child process, on success, failure, Ctrl-C or SIGTERM ----
const cleanups = [];
const children = new Set();
let cleaning;
const cleanup = () =>
  (cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // best effort: the rest must still be stopped
      }
    }
  })());
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void cleanup().finally(() => process.exit(130)));
// Last resort (an exception escaping everything): never leave a proxy running behind us.
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

const work = mkdtempSync(join(tmpdir(), 'mintgate-demo-'));
cleanups.push(() => rmSync(work, { recursive: true, force: true }));

// ---- the broker, in dev mode --------------------------------------------------------------
const port = await freePort();
const issuer = `http://127.0.0.1:${port}`;
const admin = 'demo-admin-secret';
const config = buildBrokerConfig(devConfig(issuer), {
  env: { MINTGATE_ADMIN_TOKEN: admin, MINTGATE_KEYS_DIR: join(work, 'keys') },
  host: '127.0.0.1',
  port,
  dev: true,
  source: 'demo',
});
const broker = await startBroker(config, { log: createLogger('warn') });
cleanups.push(() => broker.close());

// ---- the demo model server, in-process (a small delay per event makes the stream visible) ----
const model = await startDemoModelServer({ port: 0, chunkDelayMs: 2 });
cleanups.push(() => model.close());

// ---- the proxy, as a user runs it: `mintgate proxy --config F --port N` -----------------------
// (`mintgate proxy --help` is no test: without the command, commander prints the main help, exit 0.)
const hasProxy = /^\s+proxy\b/m.test(spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' }).stdout ?? '');
let proxyUrl;
if (hasProxy) {
  const proxyConfig = parse(readFileSync(PROXY_EXAMPLE, 'utf8'));
  proxyConfig.broker = broker.url;
  proxyConfig.upstream = model.url;
  proxyConfig.record = { ...proxyConfig.record, spool_dir: join(work, 'spool') };
  const file = join(work, 'proxy.yaml');
  writeFileSync(file, stringify(proxyConfig));
  const proxyPort = await freePort();
  proxyUrl = `http://127.0.0.1:${proxyPort}`;
  const child = spawn(process.execPath, [CLI, 'proxy', '--config', file, '--host', '127.0.0.1', '--port', String(proxyPort)], {
    env: { ...process.env, MINTGATE_PROXY_TOKEN: admin, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  cleanups.push(() => stopChild(child));
  let output = '';
  const keep = (chunk) => (output = (output + chunk).slice(-4_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  try {
    await waitForProxy(child, () => output);
  } catch (err) {
    await cleanup();
    console.error(`\ndemo failed: ${err.message}`);
    process.exit(1);
  }
}

async function waitForProxy(child, output) {
  const deadline = Date.now() + PROXY_READY_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new DemoError(`mintgate proxy exited (${child.exitCode ?? child.signalCode}) before it was ready. Its output:\n${output() || '(none)'}`);
    }
    try {
      const res = await fetch(`${proxyUrl}/_mintgate/readyz`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await sleep(100);
  }
  throw new DemoError(`mintgate proxy was not ready after ${PROXY_READY_MS / 1000} s (${proxyUrl}/_mintgate/readyz: ${last}). Its output:\n${output() || '(none)'}`);
}

// ---- helpers ----------------------------------------------------------------------------------
const step = (title) => console.log(`\n\x1b[1m== ${title}\x1b[0m`);
const show = (value) => console.log(JSON.stringify(value, null, 2));
async function post(path, body, { json = false, bearer } = {}) {
  const headers = { 'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded' };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const res = await fetch(`${broker.url}${path}`, { method: 'POST', headers, body: json ? JSON.stringify(body) : new URLSearchParams(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const exchange = (subject_token, subject_token_type, extra) =>
  post('/oauth2/token', { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token, subject_token_type, ...extra });

/** A call through the proxy; the body is read by the caller (JSON, text or a stream). */
function viaProxy(method, path, token, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${proxyUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}
const chatBody = (modelName, stream = false) => ({ model: modelName, messages: [{ role: 'user', content: 'Who is the customer on ticket 4242?' }], stream });

async function expectStatus(res, status, what) {
  if (res.status === status) return;
  const text = await res.text().catch(() => '');
  throw new DemoError(`${what}: expected HTTP ${status} from the proxy, got ${res.status} ${text.slice(0, 300)}`);
}

/** The reply must show masks and none of the planted secrets (src/dev/demo_model.ts). */
function checkMasked(text, what) {
  for (const [type, secret] of Object.entries(DEMO_SECRETS)) {
    if (text.includes(secret)) throw new DemoError(`${what}: the planted ${type} came through unmasked`);
  }
  const labels = [...new Set([...text.matchAll(/\[MASKED:([a-z_]+)\]/g)].map((m) => m[1]))];
  if (labels.length === 0) throw new DemoError(`${what}: no [MASKED:...] in the reply`);
  console.log(`\n(masked: ${labels.join(', ')})`);
}

/** Reads an OpenAI-style stream, printing the content deltas as they arrive. */
async function printStream(res) {
  const decoder = new TextDecoder();
  let buffer = '';
  let text = '';
  let events = 0;
  let done = false;
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith('data: ')) throw new DemoError(`stream: an event that is not "data: ...": ${JSON.stringify(event.slice(0, 80))}`);
      const data = event.slice('data: '.length);
      events += 1;
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const delta = JSON.parse(data).choices?.[0]?.delta?.content ?? '';
      text += delta;
      process.stdout.write(delta);
    }
  }
  if (!done) throw new DemoError('stream: it ended without data: [DONE]');
  if (buffer.trim() !== '') throw new DemoError(`stream: trailing bytes after the last event: ${JSON.stringify(buffer.slice(0, 80))}`);
  return { text, events };
}

// ---- the scripted CI job ------------------------------------------------------------------------
try {
  step(`broker in dev mode at ${broker.url}`);
  console.log(`demo model server at ${model.url}`);
  if (hasProxy) console.log(`proxy at ${proxyUrl} (config: examples/dev/proxy.yaml, pointed at the two above)`);
  else console.log('\x1b[1;33mNOTE: this build has no `mintgate proxy` (`mintgate --help` does not list it): the proxy steps are skipped.\x1b[0m');

  step('1. the CI job gets its OIDC token (here: from the dev issuer, GitHub Actions-shaped)');
  const { body: { token: assertion } } = await post('/dev/oidc/token', { repository: 'acme/models', run_id: '4242', run_attempt: '1' }, { json: true });
  show(claimsOf(assertion));

  step('2. it exchanges it for a job token (RFC 8693): one audience, exact scopes, minutes');
  const job = await exchange(assertion, 'urn:ietf:params:oauth:token-type:id_token', { audience: 'inference-gateway', scope: 'inference:invoke model:demo-small', expires_in: '300' });
  show({ status: job.status, ...job.body, access_token: `${job.body.access_token.slice(0, 24)}...` });
  const jobClaims = claimsOf(job.body.access_token);
  show(jobClaims);

  step('3. the same assertion a second time: refused (single use)');
  show((await exchange(assertion, 'urn:ietf:params:oauth:token-type:id_token', {})).body);

  step('4. the job narrows its token for one call: fewer scopes, act names the parent');
  const child = await exchange(job.body.access_token, 'urn:ietf:params:oauth:token-type:access_token', { scope: 'model:demo-small', expires_in: '60' });
  show(claimsOf(child.body.access_token));

  if (hasProxy) {
    step('5. the job calls the model through the proxy: the reply comes back masked');
    const reply = await viaProxy('POST', '/v1/chat/completions', job.body.access_token, chatBody('demo-small'));
    await expectStatus(reply, 200, 'chat through the proxy');
    const content = (await reply.json()).choices?.[0]?.message?.content;
    if (typeof content !== 'string') throw new DemoError('chat through the proxy: no choices[0].message.content in the reply');
    console.log(content.trimEnd());
    checkMasked(content, 'chat through the proxy');

    step('6. the same, streamed (server-sent events): secrets split across events are masked too');
    const streamed = await viaProxy('POST', '/v1/chat/completions', job.body.access_token, chatBody('demo-small', true));
    await expectStatus(streamed, 200, 'streamed chat through the proxy');
    const { text, events } = await printStream(streamed);
    checkMasked(text, 'streamed chat through the proxy');
    console.log(`(${events} events, the last one data: [DONE])`);

    step('7. what reached the model server: no Authorization, the token\'s jti, sub and job instead');
    const seen = model.requests.filter((r) => r.path === '/v1/chat/completions');
    if (seen.length === 0) throw new DemoError('the model server saw no chat request');
    for (const r of seen) {
      if (r.headers.authorization !== undefined) throw new DemoError('the client\'s Authorization header reached the model server');
    }
    const h = seen[0].headers;
    show({ authorization: h.authorization ?? '(none)', 'x-mintgate-jti': h['x-mintgate-jti'], 'x-mintgate-sub': h['x-mintgate-sub'], 'x-mintgate-job': h['x-mintgate-job'] });
    if (h['x-mintgate-jti'] !== jobClaims.jti) throw new DemoError(`x-mintgate-jti at the model server is ${h['x-mintgate-jti']}, not the token's jti ${jobClaims.jti}`);

    step('8. a model the token has no scope for: refused by the proxy');
    const large = await viaProxy('POST', '/v1/chat/completions', job.body.access_token, chatBody('demo-large'));
    const largeChallenge = large.headers.get('www-authenticate');
    await expectStatus(large, 403, 'demo-large without scope model:demo-large');
    show({ status: large.status, 'www-authenticate': largeChallenge, ...(await large.json()) });

    step('9. a blocked route: 403 at the proxy, never forwarded');
    const before = model.requests.length;
    const secrets = await viaProxy('GET', '/secrets/x', job.body.access_token);
    await expectStatus(secrets, 403, 'GET /secrets/x');
    show({ status: secrets.status, ...(await secrets.json()) });
    if (model.requests.slice(before).some((r) => r.path.startsWith('/secrets'))) throw new DemoError('the blocked request reached the model server');
    console.log('the model server saw no request under /secrets');
  }

  step(`${hasProxy ? 10 : 5}. an operator revokes the job; both tokens die`);
  show((await post('/admin/revocations', { job: '4242-1', reason: 'demo: job finished' }, { json: true, bearer: admin })).body);
  for (const [name, token] of [['job token', job.body.access_token], ['child token', child.body.access_token]]) {
    const { body } = await post('/oauth2/introspect', { token }, { bearer: admin });
    console.log(`${name}: active=${body.active}`);
  }

  if (hasProxy) {
    step('11. the next call through the proxy with the revoked job token: 401');
    const deadline = Date.now() + REVOCATION_MS;
    const started = Date.now();
    let res;
    for (;;) {
      res = await viaProxy('POST', '/v1/chat/completions', job.body.access_token, chatBody('demo-small'));
      if (res.status === 401 || Date.now() > deadline) break;
      await res.body?.cancel();
      await sleep(50);
    }
    const challenge = res.headers.get('www-authenticate');
    await expectStatus(res, 401, `the revoked token, ${REVOCATION_MS / 1000} s after its revocation`);
    await res.body?.cancel();
    show({ status: res.status, 'www-authenticate': challenge, refused_after_ms: Date.now() - started });
  } else {
    console.log('\n\x1b[1;33m(the proxy steps were skipped: this build has no `mintgate proxy`)\x1b[0m');
  }
  console.log('\n(`audit trace` joins this demo with its issue)');
} catch (err) {
  if (!(err instanceof DemoError)) throw err;
  console.error(`\ndemo failed: ${err.message}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
