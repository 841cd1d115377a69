/**
 * Two brokers on one Redis (issue "Redis-backed state"): one issuer name, shared keys, shared
 * records, shared revocations and replay claims; a rotation at one is served by the other.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { ADMIN_TOKEN, startTestBroker, trustEntry, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { redisTestOptions, startRedis, type RedisProcess } from '../support/redis.js';
import { openSse } from '../support/sse.js';

const ISSUER = 'http://mintgate.scale-out.test';

describe('two brokers on one Redis', redisTestOptions(), () => {
  let redis: RedisProcess;
  let idp: LocalIssuer;
  let a: TestBroker;
  let b: TestBroker;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

  before(async () => {
    redis = (await startRedis())!;
    idp = await startLocalIssuer();
    const env = { MINTGATE_KEK: randomBytes(32).toString('base64'), REDIS_URL: redis.url };
    const config = { issuer: ISSUER, trust: [trustEntry(idp.issuer)] };
    // The key schedule runs (it is what picks up a rotation made elsewhere).
    a = await startTestBroker({ config, env, overrides: { rotationTimer: true } });
    b = await startTestBroker({ config, env, overrides: { rotationTimer: true } });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await idp?.close();
    await redis?.stop();
  });

  it('share one keystore: a token minted at A verifies with B\'s JWKS and introspects active at B', async () => {
    const res = await a.exchange(await idp.github({ run_id: 'shared' }));
    assert.equal(res.status, 200, res.text);
    const { payload } = await jwtVerify(res.body.access_token, createRemoteJWKSet(new URL(`${b.url}/jwks.json`)), { issuer: ISSUER, audience: 'inference-gateway' });
    assert.equal(payload.job_id, (await b.postForm('/oauth2/introspect', { token: res.body.access_token }, admin)).body.job_id);
    assert.equal((await b.postForm('/oauth2/introspect', { token: res.body.access_token }, admin)).body.active, true);
  });

  it('share replay claims: an assertion used at A is refused at B', async () => {
    const assertion = await idp.github({ run_id: 'replay-across' });
    assert.equal((await a.exchange(assertion)).status, 200);
    const again = await b.exchange(assertion);
    assert.equal(again.status, 400);
    assert.match(again.body.error_description, /already been used/);
  });

  it('share revocations: revoked at A, inactive at B, and on B\'s stream', async () => {
    const sse = await openSse(`${b.url}/admin/revocations/stream`, admin);
    try {
      await new Promise((r) => setTimeout(r, 200));
      const before = sse.events.length;
      const token = (await a.exchange(await idp.github({ run_id: 'revoke-across' }))).body.access_token;
      const jobId = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).job_id as string;
      const revocation = await a.postJson('/admin/revocations', { job: jobId, reason: 'test' }, admin);
      assert.equal(revocation.status, 201);
      assert.equal((await b.postForm('/oauth2/introspect', { token }, admin)).body.active, false);
      const events = await sse.waitFor(before + 1);
      assert.deepEqual(JSON.parse(events.at(-1)!.data), revocation.body);
      // The rule's job defaults to the assertion's jti: the same job asked again at B is refused.
      const refused = await b.exchange(await idp.github({ run_id: 'revoke-across', jti: jobId }));
      assert.match(refused.body.error_description, /revoked/);
    } finally {
      sse.close();
    }
  });

  it('share rotations: a key rotated at A is in B\'s JWKS within 5 s, and B signs with it once active', async () => {
    const rotated = await a.postJson('/admin/keys/rotate', {}, admin);
    assert.equal(rotated.status, 200);
    const next = rotated.body.keys.find((k: { state: string }) => k.state === 'next');
    assert.ok(next, 'a next key was published');
    const deadline = Date.now() + 5_000;
    let seen = false;
    while (!seen && Date.now() < deadline) {
      seen = (await b.get('/jwks.json')).body.keys.some((k: { kid: string }) => k.kid === next.kid);
      if (!seen) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(seen, 'B serves the new key within 5 s');
    // Tokens of either broker verify with the other's keys, whichever key signed them.
    const fromB = (await b.exchange(await idp.github({ run_id: 'after-rotation' }))).body.access_token;
    const aKeys = createLocalJWKSet((await a.get('/jwks.json')).body);
    await jwtVerify(fromB, aKeys, { issuer: ISSUER });
    assert.ok(rotated.body.keys.some((k: { kid: string }) => k.kid === decodeProtectedHeader(fromB).kid));
  });
});
