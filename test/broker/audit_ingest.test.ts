/**
 * POST /admin/audit/events (CONTRACT sections 4, 7 and 8): proxies ship call records in
 * batches; each event reaches the audit log once, also when a batch is shipped again; bad
 * batches record nothing; who may ship; 503 while the store is down, then the same batch again.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startTestBroker, trustEntry, type HttpAnswer, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { assertMatchesOpenApi } from '../support/openapi.js';
import { redisTestOptions, startRedis, type RedisProcess } from '../support/redis.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const PATH = '/admin/audit/events';

/** A proxy call record as the proxy ships it. */
const call = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: randomUUID(),
  type: 'proxy.call',
  ts: new Date().toISOString(),
  jti: 'call-jti',
  job_id: '42-1',
  sub: 'acme/models@refs/heads/main',
  details: { route: 'chat', method: 'POST', path: '/v1/chat/completions', status: 200, decision: 'allowed', masked: { email: 2 }, bytes_in: 512, bytes_out: 2048, latency_ms: 12 },
  ...extra,
});

describe('audit ingestion', () => {
  let idp: LocalIssuer;
  let broker: TestBroker;
  let proxyToken: string;
  let introspectToken: string;

  before(async () => {
    idp = await startLocalIssuer();
    broker = await startTestBroker({
      config: (issuer) => ({
        trust: [
          trustEntry(idp.issuer, {}, [
            { name: 'proxy', match: { repository: 'acme/proxy' }, grant: { audiences: [issuer], scopes: ['mintgate:proxy'] } },
            { name: 'introspect', match: { repository: 'acme/introspect' }, grant: { audiences: [issuer], scopes: ['mintgate:introspect'] } },
          ]),
        ],
      }),
    });
    const token = async (repository: string) => (await broker.exchange(await idp.github({ repository }), { audience: broker.url })).body.access_token as string;
    proxyToken = await token('acme/proxy');
    introspectToken = await token('acme/introspect');
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
  });

  const ship = async (events: unknown[], headers = bearer(proxyToken)): Promise<HttpAnswer> => {
    const res = await broker.postJson(PATH, { events }, headers);
    assertMatchesOpenApi('POST', PATH, res.status, res.body);
    return res;
  };
  const recorded = (ids: unknown[]) => broker.audit.events.filter((e) => e.type === 'proxy.call' && ids.includes(e.id));

  it('records each event, as shipped, in the audit log', async () => {
    const events = [call(), call({ jti: undefined, job_id: undefined, sub: undefined, details: { route: null, status: 401, decision: 'no_token' } }), call({ ts: '2026-01-01T01:00:00.5+01:00' })];
    const res = await ship(events);
    assert.deepEqual([res.status, res.body], [200, { accepted: 3, duplicates: 0 }]);
    assert.deepEqual(
      recorded(events.map((e) => e.id)),
      events.map((e) => JSON.parse(JSON.stringify(e))),
      'id, ts, type, jti, job_id, sub and details exactly as shipped (absent stays absent)',
    );
  });

  it('records an event once: a batch shipped again is all duplicates; a mixed one records only the new', async () => {
    const first = [call(), call(), call()];
    assert.deepEqual((await ship(first)).body, { accepted: 3, duplicates: 0 });
    const before = broker.audit.events.length;
    assert.deepEqual((await ship(first)).body, { accepted: 0, duplicates: 3 }, 'the same batch after a lost answer');
    assert.equal(broker.audit.events.length, before, 'nothing recorded twice');

    const fresh = call();
    const mixed = [first[0]!, fresh, first[2]!, { ...fresh, details: { other: true } }];
    assert.deepEqual((await ship(mixed)).body, { accepted: 1, duplicates: 3 });
    assert.deepEqual(recorded([fresh.id]), [fresh], 'the first of two events with one id is the one recorded');
    assert.equal(recorded(first.map((e) => e.id)).length, 3);
  });

  it('takes 500 events in one batch (over the 64 KiB other endpoints take), not 501', async () => {
    const events = Array.from({ length: 500 }, () => call({ details: { route: 'chat', note: 'x'.repeat(400) } }));
    assert.ok(JSON.stringify({ events }).length > 200 * 1024);
    assert.deepEqual((await ship(events)).body, { accepted: 500, duplicates: 0 });
    const tooMany = await ship(Array.from({ length: 501 }, () => call()));
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.body.error_description, /^bad audit batch: events: /);
  });

  it('refuses bad batches with 400 invalid_request and records nothing of them', async () => {
    const before = broker.audit.events.length;
    const cases: Array<[string, unknown, RegExp]> = [
      ['no events member', {}, /^bad audit batch: events: /],
      ['no events', { events: [] }, /^bad audit batch: events: /],
      ['events not an array', { events: call() }, /^bad audit batch: events: /],
      ['unknown envelope member', { events: [call()], proxy: 'p1' }, /^bad audit batch: Unrecognized key: "proxy"$/],
      ['unknown event member', { events: [call({ token: 'secret' })] }, /^bad audit batch: events\.0: Unrecognized key: "token"$/],
      ['id too short', { events: [call({ id: 'abc' })] }, /^bad audit batch: events\.0\.id: id must be 8-64 characters/],
      ['id too long', { events: [call({ id: 'a'.repeat(65) })] }, /events\.0\.id/],
      ['id with a slash', { events: [call({ id: 'abcdefgh/ij' })] }, /events\.0\.id/],
      ['no id', { events: [call({ id: undefined })] }, /events\.0\.id/],
      ['another type', { events: [call({ type: 'token.issued' })] }, /^bad audit batch: events\.0\.type: /],
      ['ts without a zone', { events: [call({ ts: '2026-01-01T00:00:00' })] }, /^bad audit batch: events\.0\.ts: /],
      ['ts not a time', { events: [call({ ts: 'yesterday' })] }, /events\.0\.ts/],
      ['ts a number', { events: [call({ ts: Date.now() })] }, /events\.0\.ts/],
      ['details an array', { events: [call({ details: [] })] }, /^bad audit batch: events\.0\.details: /],
      ['details a string', { events: [call({ details: 'x' })] }, /events\.0\.details/],
      ['details null', { events: [call({ details: null })] }, /events\.0\.details/],
      ['no details', { events: [call({ details: undefined })] }, /events\.0\.details/],
      ['details over 256 KiB', { events: [call({ details: { body: 'x'.repeat(256 * 1024) } })] }, /^bad audit batch: events\.0\.details: details must be at most 262144 bytes as JSON$/],
      ['empty jti', { events: [call({ jti: '' })] }, /events\.0\.jti/],
      ['a bad event after good ones', { events: [call(), call(), call({ ts: 'x' })] }, /^bad audit batch: events\.2\.ts: /],
    ];
    for (const [name, body, description] of cases) {
      const res = await broker.postJson(PATH, body, bearer(proxyToken));
      assertMatchesOpenApi('POST', PATH, res.status, res.body);
      assert.equal(res.status, 400, name);
      assert.equal(res.body.error, 'invalid_request', name);
      assert.match(res.body.error_description, description, name);
    }
    const notJson = await broker.postForm(PATH, { events: 'x' }, bearer(proxyToken));
    assert.deepEqual([notJson.status, notJson.body], [415, { error: 'invalid_request', error_description: 'send a JSON body' }]);
    const garbled = await broker.postJson(PATH, undefined, bearer(proxyToken));
    assert.deepEqual([garbled.status, garbled.body.error], [400, 'invalid_request']);
    const huge = await broker.postJson(PATH, { events: [call({ details: { body: 'x'.repeat(4 * 1024 * 1024) } })] }, bearer(proxyToken));
    assertMatchesOpenApi('POST', PATH, huge.status, huge.body);
    assert.deepEqual([huge.status, huge.body], [413, { error: 'invalid_request', error_description: 'the request body is too large' }]);
    assert.equal(broker.audit.events.length, before, 'nothing recorded');
  });

  it('needs mintgate:proxy (or admin): 401 without or with a bad credential, 403 without the scope', async () => {
    const none = await broker.postJson(PATH, { events: [call()] });
    assert.deepEqual([none.status, none.body.error], [401, 'invalid_request']);
    const bad = await ship([call()], { authorization: 'Bearer nope' });
    assert.deepEqual([bad.status, bad.body.error], [401, 'invalid_token']);
    const forbidden = await ship([call()], bearer(introspectToken));
    assert.deepEqual([forbidden.status, forbidden.body], [403, { error: 'insufficient_scope', error_description: 'this operation needs the scope mintgate:proxy' }]);
    assert.deepEqual((await ship([call()], admin)).body, { accepted: 1, duplicates: 0 });
  });
});

describe('audit ingestion while Redis is down', redisTestOptions(), () => {
  let redis: RedisProcess;
  let broker: TestBroker;
  before(async () => {
    redis = (await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] }))!;
    broker = await startTestBroker({ env: { MINTGATE_KEK: randomBytes(32).toString('base64'), REDIS_URL: redis.url } });
  });
  after(async () => {
    await broker?.close();
    await redis?.stop();
  });

  it('answers 503 (nothing recorded), and takes the same batch once Redis is back; dedupe survives a restart', async () => {
    const shipped = [call()];
    assert.deepEqual((await broker.postJson(PATH, { events: shipped }, admin)).body, { accepted: 1, duplicates: 0 });
    redis.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const batch = [call(), call()];
    const down = await broker.postJson(PATH, { events: batch }, admin);
    assertMatchesOpenApi('POST', PATH, down.status, down.body);
    assert.equal(down.status, 503);
    assert.equal(down.body.error, 'temporarily_unavailable');
    assert.ok(down.headers['retry-after']);
    assert.equal(broker.audit.events.filter((e) => batch.some((b) => b.id === e.id)).length, 0);

    await redis.restart({ keepData: true });
    const deadline = Date.now() + 10_000;
    let res: HttpAnswer;
    do {
      await new Promise((r) => setTimeout(r, 100));
      res = await broker.postJson(PATH, { events: [...shipped, ...batch] }, admin);
    } while (res.status === 503 && Date.now() < deadline);
    assert.deepEqual([res.status, res.body], [200, { accepted: 2, duplicates: 1 }]);
    assert.deepEqual(
      broker.audit.events.filter((e) => e.type === 'proxy.call').map((e) => e.id),
      [shipped[0]!.id, batch[0]!.id, batch[1]!.id],
      'every event once',
    );
  });
});
