#!/usr/bin/env node
// `npm run demo`: a scripted CI job against a dev-mode broker started here on a free port:
// get an assertion, exchange it, narrow it, introspect, revoke the job, see it die.
// (The proxy, the demo model server and `audit trace` join this script with their issues.)
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBrokerConfig } from '../dist/config/broker.js';
import { devConfig } from '../dist/config/dev.js';
import { startBroker, createLogger } from '../dist/main.js';

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const issuer = `http://127.0.0.1:${port}`;
const admin = 'demo-admin-secret';
const config = buildBrokerConfig(devConfig(issuer), {
  env: { MINTGATE_ADMIN_TOKEN: admin, MINTGATE_KEYS_DIR: join(mkdtempSync(join(tmpdir(), 'mintgate-demo-')), 'keys') },
  host: '127.0.0.1',
  port,
  dev: true,
  source: 'demo',
});
const broker = await startBroker(config, { log: createLogger('warn') });
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

try {
  step(`broker in dev mode at ${broker.url}`);
  step('1. the CI job gets its OIDC token (here: from the dev issuer, GitHub Actions-shaped)');
  const { body: { token: assertion } } = await post('/dev/oidc/token', { repository: 'acme/models', run_id: '4242', run_attempt: '1' }, { json: true });
  show(claimsOf(assertion));

  step('2. it exchanges it for a job token (RFC 8693): one audience, exact scopes, minutes');
  const job = await exchange(assertion, 'urn:ietf:params:oauth:token-type:id_token', { audience: 'inference-gateway', scope: 'inference:invoke model:llama-3-8b', expires_in: '300' });
  show({ status: job.status, ...job.body, access_token: `${job.body.access_token.slice(0, 24)}...` });
  show(claimsOf(job.body.access_token));

  step('3. the same assertion a second time: refused (single use)');
  show((await exchange(assertion, 'urn:ietf:params:oauth:token-type:id_token', {})).body);

  step('4. the job narrows its token for one call: fewer scopes, act names the parent');
  const child = await exchange(job.body.access_token, 'urn:ietf:params:oauth:token-type:access_token', { scope: 'model:llama-3-8b', expires_in: '60' });
  show(claimsOf(child.body.access_token));

  step('5. an operator revokes the job; both tokens die');
  show((await post('/admin/revocations', { job: '4242-1', reason: 'demo: job finished' }, { json: true, bearer: admin })).body);
  for (const [name, token] of [['job token', job.body.access_token], ['child token', child.body.access_token]]) {
    const { body } = await post('/oauth2/introspect', { token }, { bearer: admin });
    console.log(`${name}: active=${body.active}`);
  }
  console.log('\n(the proxy, masking and `audit trace` join this demo with their issues)');
} finally {
  await broker.close();
}
