/** The token endpoint's request handling: limits, content types, duplicates, rate limits. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startTestBroker, TOKEN_EXCHANGE, trustEntry, TT, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { assertMatchesOpenApi } from '../support/openapi.js';

describe('token endpoint requests', () => {
  let idp: LocalIssuer;
  let broker: TestBroker;
  before(async () => {
    idp = await startLocalIssuer();
    broker = await startTestBroker({
      config: {
        limits: { exchanges_per_subject_per_minute: 3 },
        trust: [trustEntry(idp.issuer, {}, [{ name: 'any', job: 'claims.run_id', grant: { audiences: ['gw'], scopes: ['s'] } }])],
      },
    });
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
  });

  it('accepts JSON as well as a form', async () => {
    const res = await broker.postJson('/oauth2/token', { grant_type: TOKEN_EXCHANGE, subject_token: await idp.github({ run_id: 'json', sub: 'json-sub' }), subject_token_type: TT.idToken });
    assert.equal(res.status, 200, res.text);
  });

  it('refuses repeated parameters, except audience and resource', async () => {
    const token = await idp.github({ run_id: 'dup', sub: 'dup-sub' });
    const dup = await broker.postForm('/oauth2/token', { grant_type: TOKEN_EXCHANGE, subject_token: [token, token], subject_token_type: TT.jwt });
    assert.equal(dup.status, 400);
    assert.equal(dup.body.error, 'invalid_request');
    assert.match(dup.body.error_description, /repeated/);
    const sameAudienceTwice = await broker.exchange(token, { audience: ['gw', 'gw'] });
    assert.equal(sameAudienceTwice.status, 200, sameAudienceTwice.text);
  });

  it('answers 413 for a body over 64 KiB and 415 for other content types', async () => {
    const big = await broker.postForm('/oauth2/token', { grant_type: TOKEN_EXCHANGE, subject_token: 'x'.repeat(70_000), subject_token_type: TT.jwt });
    assert.equal(big.status, 413);
    assert.equal(big.body.error, 'invalid_request');
    assertMatchesOpenApi('POST', '/oauth2/token', 413, big.body);
    const res = await request(`${broker.url}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'grant_type=x' });
    assert.equal(res.statusCode, 415);
    assert.equal(((await res.body.json()) as { error: string }).error, 'invalid_request');
    const broken = await request(`${broker.url}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
    assert.equal(broken.statusCode, 400);
    assert.equal(((await broken.body.json()) as { error: string }).error, 'invalid_request');
  });

  it('answers 429 slow_down with Retry-After past the per-subject limit, per subject', async () => {
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 5; i++) {
      last = await broker.exchange(await idp.github({ run_id: `rl-${i}`, sub: 'busy-subject' }));
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    assert.equal(last!.body.error, 'slow_down');
    assert.ok(Number(last!.headers['retry-after']) >= 1);
    assertMatchesOpenApi('POST', '/oauth2/token', 429, last!.body);
    const other = await broker.exchange(await idp.github({ run_id: 'rl-other', sub: 'quiet-subject' }));
    assert.equal(other.status, 200, 'another subject is not affected');
  });

  it('answers the same through express (a URL with a query) as on the fast path, each header once', async () => {
    for (const path of ['/oauth2/token', '/oauth2/token?x=1']) {
      const res = await broker.postForm(path, { grant_type: 'x' }, { 'x-request-id': 'same-id' });
      assert.equal(res.status, 400, path);
      assert.equal(res.body.error, 'unsupported_grant_type');
      for (const header of ['x-request-id', 'content-security-policy', 'cache-control', 'x-content-type-options']) {
        assert.equal(typeof res.headers[header], 'string', `${path}: one ${header}`);
      }
      assert.equal(res.headers['x-request-id'], 'same-id');
    }
  });

  it('never echoes the subject token in an error', async () => {
    const token = await idp.github({ run_id: 'echo', aud: 'someone-else' });
    const res = await broker.exchange(token);
    assert.equal(res.status, 400);
    assert.ok(!res.text.includes(token.split('.')[1]!));
  });
});

describe('per-address limit', () => {
  let idp: LocalIssuer;
  let direct: TestBroker;
  let behindProxy: TestBroker;
  before(async () => {
    idp = await startLocalIssuer();
    const trust = [trustEntry(idp.issuer, {}, [{ name: 'any', grant: { audiences: ['gw'], scopes: ['s'] } }])];
    direct = await startTestBroker({ config: { limits: { exchanges_per_address_per_minute: 4 }, trust } });
    behindProxy = await startTestBroker({ config: { limits: { exchanges_per_address_per_minute: 4, trusted_proxies: ['loopback'] }, trust } });
  });
  after(async () => {
    await direct?.close();
    await behindProxy?.close();
    await idp?.close();
  });

  it('counts every token request from one address, garbage included, and answers 429 slow_down', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await direct.exchange('garbage')).status);
    statuses.push((await direct.exchange(await idp.github({ sub: `addr-${Math.random()}` }))).status);
    const over = await direct.exchange(await idp.github({ sub: 'addr-over' }));
    assert.deepEqual(statuses, [400, 400, 400, 200]);
    assert.equal(over.status, 429);
    assert.equal(over.body.error, 'slow_down');
    assert.match(over.body.error_description, /address/);
    assert.ok(Number(over.headers['retry-after']) >= 1);
    // Without trusted proxies, X-Forwarded-For is not believed.
    const spoofed = await direct.exchange('garbage', {}).then(() => direct.postForm('/oauth2/token', { grant_type: 'x' }, { 'x-forwarded-for': '203.0.113.9' }));
    assert.equal(spoofed.status, 429);
  });

  it('behind a trusted load balancer, counts per forwarded client address', async () => {
    for (let i = 0; i < 4; i++) await behindProxy.postForm('/oauth2/token', { grant_type: 'x' }, { 'x-forwarded-for': '203.0.113.1' });
    const first = await behindProxy.postForm('/oauth2/token', { grant_type: 'x' }, { 'x-forwarded-for': '203.0.113.1' });
    assert.equal(first.status, 429);
    const other = await behindProxy.postForm('/oauth2/token', { grant_type: 'x' }, { 'x-forwarded-for': '203.0.113.2' });
    assert.equal(other.status, 400, 'another client behind the same balancer has its own budget');
  });
});
