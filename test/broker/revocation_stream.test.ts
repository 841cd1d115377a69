/**
 * GET /admin/revocations/stream: every revocation reaches a follower, a reconnect with
 * Last-Event-ID resumes with nothing lost or repeated, heartbeats, and who may follow.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startTestBroker, trustEntry, TT, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { openSse } from '../support/sse.js';

describe('revocation stream', () => {
  let idp: LocalIssuer;
  let broker: TestBroker;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  before(async () => {
    idp = await startLocalIssuer();
    broker = await startTestBroker({
      config: (issuer) => ({
        trust: [
          trustEntry(idp.issuer, {}, [
            { name: 'proxy', match: { repository: 'acme/proxy' }, grant: { audiences: [issuer], scopes: ['mintgate:proxy', 'mintgate:introspect'] } },
            { name: 'job', grant: { audiences: ['gw'], scopes: ['s'] } },
          ]),
        ],
      }),
      overrides: { heartbeatMs: 200 },
    });
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
  });
  const streamUrl = () => `${broker.url}/admin/revocations/stream`;

  it('sends the live deny-list first, then each new revocation at once, with ids', async () => {
    const before = await broker.postJson('/admin/revocations', { jti: 'early-jti', reason: 'before connecting' }, admin);
    assert.equal(before.status, 201);
    const sse = await openSse(streamUrl(), admin);
    try {
      assert.equal(sse.status, 200);
      assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
      assert.equal(sse.headers['cache-control'], 'no-store');
      const [first] = await sse.waitFor(1);
      assert.equal(first!.event, 'revocation');
      assert.equal(first!.id, before.body.id);
      assert.deepEqual(JSON.parse(first!.data), before.body);

      const made = [];
      for (const body of [{ job: 'job-1', reason: 'done' }, { sub: 'acme/models@refs/heads/main' }, { jti: 'j-2' }]) {
        made.push((await broker.postJson('/admin/revocations', body, admin)).body);
      }
      const token = (await broker.exchange(await idp.github({ repository: 'acme/other' }))).body.access_token;
      await broker.postForm('/oauth2/revoke', { token });
      const events = await sse.waitFor(5);
      assert.deepEqual(events.slice(1, 4).map((e) => JSON.parse(e.data)), made);
      assert.equal(JSON.parse(events[4]!.data).jti, JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).jti);
      const ids = events.map((e) => e.id!);
      assert.deepEqual([...ids].sort(), ids.slice().sort(), 'ids arrive in order');
      assert.equal(new Set(ids).size, ids.length, 'no event twice');
    } finally {
      sse.close();
    }
  });

  it('resumes after Last-Event-ID with nothing lost or repeated', async () => {
    const first = await openSse(streamUrl(), admin);
    await first.waitFor(1);
    await new Promise((r) => setTimeout(r, 300)); // the whole backlog
    const lastId = first.events.at(-1)!.id!;
    first.close();

    const missed = [];
    for (let i = 0; i < 3; i++) missed.push((await broker.postJson('/admin/revocations', { jti: `while-away-${i}` }, admin)).body);
    const resumed = await openSse(streamUrl(), { ...admin, 'last-event-id': lastId });
    try {
      const events = await resumed.waitFor(3);
      assert.deepEqual(events.map((e) => JSON.parse(e.data)), missed);
      const live = (await broker.postJson('/admin/revocations', { job: 'after-resume' }, admin)).body;
      const more = await resumed.waitFor(4);
      assert.deepEqual(JSON.parse(more[3]!.data), live);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(resumed.events.length, 4, 'nothing repeated');
    } finally {
      resumed.close();
    }
  });

  it('sends heartbeat comments', async () => {
    const sse = await openSse(streamUrl(), admin);
    try {
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(sse.comments.filter((c) => c === 'heartbeat').length >= 1, `comments: ${sse.comments}`);
    } finally {
      sse.close();
    }
  });

  it('ends open streams when the broker shuts down, so it stops at once', async () => {
    const own = await startTestBroker({ config: { trust: [trustEntry(idp.issuer)] } });
    const sse = await openSse(`${own.url}/admin/revocations/stream`, admin);
    assert.equal(sse.status, 200);
    const started = Date.now();
    await own.close();
    await sse.ended;
    assert.ok(Date.now() - started < 2_000, `closed in ${Date.now() - started} ms`);
  });

  it('refuses a bad Last-Event-ID, no credential, and a token without mintgate:proxy', async () => {
    const bad = await broker.get('/admin/revocations/stream', { ...admin, 'last-event-id': 'not-an-id' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'invalid_request');
    assert.equal((await broker.get('/admin/revocations/stream')).status, 401);
    const proxyToken = (await broker.exchange(await idp.github({ repository: 'acme/proxy' }), { audience: broker.url })).body.access_token;
    const narrowed = (await broker.exchange(proxyToken, { subject_token_type: TT.accessToken, scope: 'mintgate:introspect' })).body.access_token;
    const forbidden = await broker.get('/admin/revocations/stream', { authorization: `Bearer ${narrowed}` });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.error, 'insufficient_scope');
    const allowed = await openSse(streamUrl(), { authorization: `Bearer ${proxyToken}` });
    assert.equal(allowed.status, 200);
    allowed.close();
  });
});
