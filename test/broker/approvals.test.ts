/**
 * Human approvals (CONTRACT sections 4 and 7): the proxy opens one, an operator lists and
 * decides, the decision reaches followers of the revocation stream as `event: approval` in one
 * sequence with revocations, resumable with Last-Event-ID; who may do what; expiry; bad bodies;
 * and 503 while the store is down.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startTestBroker, trustEntry, type HttpAnswer, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { assertMatchesOpenApi } from '../support/openapi.js';
import { redisTestOptions, startRedis, type RedisProcess } from '../support/redis.js';
import { openSse } from '../support/sse.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const APPROVAL_ID = /^apr_[A-Za-z0-9_-]{22}$/;
const OPERATOR = 'alice@example.com';

/** A valid `POST /admin/approvals` body. */
const request = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  jti: 'held-jti-1',
  sub: 'acme/models@refs/heads/main',
  job_id: '42-1',
  route: 'export',
  method: 'POST',
  path: '/v1/models/llama-3-8b/export',
  model: 'llama-3-8b',
  request_sha256: 'c0ffee'.padEnd(64, '0'),
  expires_in: 60,
  ...extra,
});

/** The answer, after checking it against openapi.yaml. */
function checked(method: string, path: string, res: HttpAnswer): HttpAnswer {
  assertMatchesOpenApi(method, path, res.status, res.body);
  return res;
}

describe('approvals', () => {
  let idp: LocalIssuer;
  let broker: TestBroker;
  /** Tokens for the broker itself: the proxy's (mintgate:proxy), an operator's (mintgate:admin), one with neither. */
  let proxyToken: string;
  let operatorToken: string;
  let introspectToken: string;

  before(async () => {
    idp = await startLocalIssuer();
    broker = await startTestBroker({
      config: (issuer) => ({
        trust: [
          trustEntry(idp.issuer, {}, [
            { name: 'proxy', match: { repository: 'acme/proxy' }, grant: { audiences: [issuer], scopes: ['mintgate:proxy'] } },
            { name: 'operator', match: { repository: 'acme/ops' }, subject: `"${OPERATOR}"`, grant: { audiences: [issuer], scopes: ['mintgate:admin'] } },
            { name: 'introspect', match: { repository: 'acme/introspect' }, grant: { audiences: [issuer], scopes: ['mintgate:introspect'] } },
          ]),
        ],
      }),
      overrides: { heartbeatMs: 200 },
    });
    const token = async (repository: string) => (await broker.exchange(await idp.github({ repository }), { audience: broker.url })).body.access_token as string;
    proxyToken = await token('acme/proxy');
    operatorToken = await token('acme/ops');
    introspectToken = await token('acme/introspect');
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
  });

  const create = async (extra: Record<string, unknown> = {}, headers = bearer(proxyToken)) =>
    checked('POST', '/admin/approvals', await broker.postJson('/admin/approvals', request(extra), headers));
  const decide = async (id: string, decision: 'approve' | 'deny', headers = bearer(operatorToken)) =>
    checked('POST', `/admin/approvals/${id}/${decision}`, await broker.postJson(`/admin/approvals/${id}/${decision}`, {}, headers));
  const list = async (query = '', headers = bearer(operatorToken)) =>
    checked('GET', `/admin/approvals${query}`, await broker.get(`/admin/approvals${query}`, headers));

  it('the proxy opens an approval: 201 {id, status pending, expires_at}, audited as approval.requested', async () => {
    const before = Date.now();
    const res = await create();
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['expires_at', 'id', 'status']);
    assert.match(res.body.id, APPROVAL_ID);
    assert.equal(res.body.status, 'pending');
    const expiresAt = Date.parse(res.body.expires_at);
    assert.ok(expiresAt >= before + 60_000 && expiresAt <= Date.now() + 60_000, res.body.expires_at);
    assert.notEqual((await create()).body.id, res.body.id, 'a fresh id each time');

    const event = broker.audit.events.find((e) => e.type === 'approval.requested' && e.details.approval_id === res.body.id);
    assert.deepEqual(event, {
      type: 'approval.requested',
      jti: 'held-jti-1',
      job_id: '42-1',
      sub: 'acme/models@refs/heads/main',
      details: {
        approval_id: res.body.id,
        route: 'export',
        method: 'POST',
        path: '/v1/models/llama-3-8b/export',
        model: 'llama-3-8b',
        request_sha256: 'c0ffee'.padEnd(64, '0'),
        expires_at: res.body.expires_at,
        by: JSON.parse(Buffer.from(proxyToken.split('.')[1]!, 'base64url').toString()).sub,
        by_jti: JSON.parse(Buffer.from(proxyToken.split('.')[1]!, 'base64url').toString()).jti,
      },
    });
  });

  it('lists approvals newest first in their wire form, filtered by status', async () => {
    const first = (await create({ jti: 'list-1', model: undefined })).body;
    const second = (await create({ jti: 'list-2', model: null, request_sha256: 'AB'.repeat(32) })).body;
    const third = (await create({ jti: 'list-3' })).body;
    const res = await list();
    assert.equal(res.status, 200);
    const ids = res.body.approvals.map((a: { id: string }) => a.id);
    assert.ok(ids.indexOf(third.id) < ids.indexOf(second.id) && ids.indexOf(second.id) < ids.indexOf(first.id), 'newest first');
    const listed = res.body.approvals.find((a: { id: string }) => a.id === second.id);
    assert.deepEqual(listed, {
      id: second.id,
      status: 'pending',
      jti: 'list-2',
      sub: 'acme/models@refs/heads/main',
      job_id: '42-1',
      route: 'export',
      method: 'POST',
      path: '/v1/models/llama-3-8b/export',
      model: null,
      request_sha256: 'ab'.repeat(32),
      created_at: listed.created_at,
      expires_at: second.expires_at,
    });
    assert.equal(Date.parse(listed.expires_at) - Date.parse(listed.created_at), 60_000);
    assert.equal(res.body.approvals.find((a: { id: string }) => a.id === first.id).model, null, 'absent model lists as null');

    await decide(first.id, 'approve');
    await decide(second.id, 'deny');
    const statuses = async (query: string) => new Set((await list(query)).body.approvals.map((a: { status: string }) => a.status));
    assert.deepEqual(await statuses('?status=approved'), new Set(['approved']));
    assert.deepEqual(await statuses('?status=denied'), new Set(['denied']));
    assert.deepEqual(await statuses('?status=pending'), new Set(['pending']));
    const pending = (await list('?status=pending')).body.approvals.map((a: { id: string }) => a.id);
    assert.ok(pending.includes(third.id) && !pending.includes(first.id) && !pending.includes(second.id));
  });

  it('refuses a bad status filter with 400', async () => {
    for (const query of ['?status=maybe', '?status=', '?status=pending&status=denied', '?status=PENDING']) {
      const res = await list(query);
      assert.equal(res.status, 400, query);
      assert.deepEqual(res.body, { error: 'invalid_request', error_description: 'status must be one of pending, approved, denied, expired' });
    }
  });

  it('approve: 200 with the decided approval, by the caller, audited; then 409 for either decision', async () => {
    const created = (await create({ jti: 'to-approve' })).body;
    const before = Date.now();
    const res = await decide(created.id, 'approve');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, created.id);
    assert.equal(res.body.status, 'approved');
    assert.equal(res.body.decided_by, OPERATOR);
    assert.ok(Date.parse(res.body.decided_at) >= before - 1 && Date.parse(res.body.decided_at) <= Date.now());
    assert.deepEqual((await list()).body.approvals.find((a: { id: string }) => a.id === created.id), res.body);

    const operatorJti = JSON.parse(Buffer.from(operatorToken.split('.')[1]!, 'base64url').toString()).jti;
    const event = broker.audit.events.find((e) => e.type === 'approval.decided' && e.details.approval_id === created.id);
    assert.deepEqual(event, {
      type: 'approval.decided',
      jti: 'to-approve',
      job_id: '42-1',
      sub: 'acme/models@refs/heads/main',
      details: {
        approval_id: created.id,
        decision: 'approved',
        by: OPERATOR,
        by_jti: operatorJti,
        route: 'export',
        method: 'POST',
        path: '/v1/models/llama-3-8b/export',
        request_sha256: 'c0ffee'.padEnd(64, '0'),
        event_id: event?.details.event_id,
      },
    });
    assert.match(String(event?.details.event_id), /^\d+-\d+$/);

    for (const decision of ['approve', 'deny'] as const) {
      const again = await decide(created.id, decision, admin);
      assert.equal(again.status, 409);
      assert.deepEqual(again.body, { error: 'conflict', error_description: `approval ${created.id} is already approved` });
    }
  });

  it('deny: 200 with status denied; decided_by is "admin" for the bootstrap secret', async () => {
    const created = (await create({ jti: 'to-deny' }, admin)).body;
    const res = await decide(created.id, 'deny', admin);
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'denied');
    assert.equal(res.body.decided_by, 'admin');
    const again = await decide(created.id, 'approve', admin);
    assert.deepEqual([again.status, again.body], [409, { error: 'conflict', error_description: `approval ${created.id} is already denied` }]);
  });

  it('404 for an unknown or malformed id', async () => {
    for (const id of ['apr_AAAAAAAAAAAAAAAAAAAAAA', 'apr_short', 'nope', '..%2F..', 'apr_AAAAAAAAAAAAAAAAAAAAAA%00']) {
      for (const decision of ['approve', 'deny'] as const) {
        const res = await decide(id, decision);
        assert.equal(res.status, 404, `${decision} ${id}`);
        assert.deepEqual(res.body, { error: 'not_found', error_description: 'no such approval' });
      }
    }
  });

  it('refuses bad bodies with 400 invalid_request (415 when not JSON), and stores nothing', async () => {
    const countBefore = (await list()).body.approvals.length;
    const cases: Array<[string, unknown, RegExp]> = [
      ['missing jti', request({ jti: undefined }), /^bad approval request: jti: /],
      ['empty sub', request({ sub: '' }), /^bad approval request: sub: /],
      ['unknown member', request({ extra: 1 }), /^bad approval request: Unrecognized key: "extra"$/],
      ['short hash', request({ request_sha256: 'ab' }), /^bad approval request: request_sha256: request_sha256 must be 64 hex digits$/],
      ['non-hex hash', request({ request_sha256: 'g'.repeat(64) }), /request_sha256 must be 64 hex digits/],
      ['expires_in 0', request({ expires_in: 0 }), /^bad approval request: expires_in: /],
      ['expires_in over an hour', request({ expires_in: 3601 }), /^bad approval request: expires_in: /],
      ['expires_in not an integer', request({ expires_in: 1.5 }), /expires_in/],
      ['expires_in a string', request({ expires_in: '60' }), /expires_in/],
      ['path without slash', request({ path: 'v1/x' }), /path must start with \//],
      ['path with a newline', request({ path: '/a\nb' }), /control characters/],
      ['method with a space', request({ method: 'PO ST' }), /method must be an HTTP method/],
      ['empty model', request({ model: '' }), /model/],
      ['an array', [request()], /^bad approval request: /],
    ];
    for (const [name, body, description] of cases) {
      const res = await broker.postJson('/admin/approvals', body, bearer(proxyToken));
      checked('POST', '/admin/approvals', res);
      assert.equal(res.status, 400, name);
      assert.equal(res.body.error, 'invalid_request', name);
      assert.match(res.body.error_description, description, name);
    }
    const notJson = await broker.postForm('/admin/approvals', { jti: 'x' }, bearer(proxyToken));
    assert.deepEqual([notJson.status, notJson.body], [415, { error: 'invalid_request', error_description: 'send a JSON body' }]);
    assert.equal((await list()).body.approvals.length, countBefore);
  });

  it('who may do what: proxy creates, operators list and decide; 401 without a credential', async () => {
    const id = (await create()).body.id;
    const routes: Array<[string, () => Promise<HttpAnswer>, (h: Record<string, string>) => Promise<HttpAnswer>]> = [
      ['create', () => broker.postJson('/admin/approvals', request(), {}), (h) => broker.postJson('/admin/approvals', request(), h)],
      ['list', () => broker.get('/admin/approvals'), (h) => broker.get('/admin/approvals', h)],
      ['approve', () => broker.postJson(`/admin/approvals/${id}/approve`, {}), (h) => broker.postJson(`/admin/approvals/${id}/approve`, {}, h)],
      ['deny', () => broker.postJson(`/admin/approvals/${id}/deny`, {}), (h) => broker.postJson(`/admin/approvals/${id}/deny`, {}, h)],
    ];
    for (const [name, anonymous, withHeaders] of routes) {
      const none = await anonymous();
      assert.equal(none.status, 401, name);
      assert.equal(none.body.error, 'invalid_request', name);
      assert.match(String(none.headers['www-authenticate']), /^Bearer realm="mintgate"$/);
      const bad = await withHeaders({ authorization: 'Bearer not-a-credential' });
      assert.deepEqual([bad.status, bad.body.error], [401, 'invalid_token'], name);
    }
    const forbidden = async (res: Promise<HttpAnswer>, scope: string) => {
      const answer = await res;
      assert.equal(answer.status, 403);
      assert.deepEqual(answer.body, { error: 'insufficient_scope', error_description: `this operation needs the scope ${scope}` });
    };
    // The proxy's token may open approvals, never list or decide them.
    await forbidden(broker.get('/admin/approvals', bearer(proxyToken)), 'mintgate:admin');
    await forbidden(broker.postJson(`/admin/approvals/${id}/approve`, {}, bearer(proxyToken)), 'mintgate:admin');
    await forbidden(broker.postJson(`/admin/approvals/${id}/deny`, {}, bearer(proxyToken)), 'mintgate:admin');
    await forbidden(broker.postJson('/admin/approvals', request(), bearer(introspectToken)), 'mintgate:proxy');
    await forbidden(broker.get('/admin/approvals', bearer(introspectToken)), 'mintgate:admin');
    // Still pending after all that.
    assert.equal((await list()).body.approvals.find((a: { id: string }) => a.id === id).status, 'pending');
  });

  it('the stream carries each decision as event: approval, in one sequence with revocations, and resumes with nothing lost or repeated', async () => {
    const streamUrl = `${broker.url}/admin/revocations/stream`;
    const sse = await openSse(streamUrl, bearer(proxyToken));
    await new Promise((r) => setTimeout(r, 300)); // the backlog (earlier tests' decisions and revocations)
    const backlog = sse.events.length;
    const live: Array<{ event: string; body: unknown }> = [];
    const revoke = async (body: Record<string, string>) => {
      const res = await broker.postJson('/admin/revocations', body, admin);
      assert.equal(res.status, 201);
      live.push({ event: 'revocation', body: res.body });
    };
    const decided = async (decision: 'approve' | 'deny') => {
      const created = (await create({ jti: `stream-${live.length}` })).body;
      const res = await decide(created.id, decision);
      assert.equal(res.status, 200);
      live.push({ event: 'approval', body: res.body });
    };
    await revoke({ jti: 'stream-rev-1' });
    await decided('approve');
    await revoke({ job: 'stream-job' });
    await decided('deny');
    const events = (await sse.waitFor(backlog + 4)).slice(backlog);
    assert.deepEqual(events.map((e) => ({ event: e.event, body: JSON.parse(e.data) })), live);
    for (const e of events) assertMatchesOpenApi('POST', e.event === 'approval' ? '/admin/approvals/x/approve' : '/admin/revocations', e.event === 'approval' ? 200 : 201, JSON.parse(e.data));
    const revocationEvent = events.find((e) => e.event === 'revocation')!;
    assert.equal(revocationEvent.id, JSON.parse(revocationEvent.data).id, 'a revocation keeps its wire form: its id is its event id');
    const lastId = sse.events.at(-1)!.id!;
    sse.close();

    const missed = live.length;
    await decided('approve');
    await revoke({ sub: 'stream-sub' });
    await decided('deny');
    const resumed = await openSse(streamUrl, { ...bearer(proxyToken), 'last-event-id': lastId });
    try {
      const again = await resumed.waitFor(3);
      assert.deepEqual(again.map((e) => ({ event: e.event, body: JSON.parse(e.data) })), live.slice(missed));
      await decided('approve');
      const more = await resumed.waitFor(4);
      assert.deepEqual({ event: more[3]!.event, body: JSON.parse(more[3]!.data) }, live.at(-1));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(resumed.events.length, 4, 'nothing repeated');
      const ids = [lastId, ...resumed.events.map((e) => e.id!)];
      assert.equal(new Set(ids).size, ids.length);
    } finally {
      resumed.close();
    }

    // A fresh follower gets every live event, decisions included, in order.
    const fresh = await openSse(streamUrl, bearer(proxyToken));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const seen = fresh.events.map((e) => ({ event: e.event, body: JSON.parse(e.data) }));
      for (const want of live) assert.ok(seen.some((s) => JSON.stringify(s) === JSON.stringify(want)), JSON.stringify(want));
      const order = live.map((want) => seen.findIndex((s) => JSON.stringify(s) === JSON.stringify(want)));
      assert.deepEqual(order, [...order].sort((a, b) => a - b));
    } finally {
      fresh.close();
    }
  });
});

describe('approvals that expire', () => {
  let broker: TestBroker;
  let clock = Date.now();
  before(async () => {
    broker = await startTestBroker({ now: () => clock });
  });
  after(async () => {
    await broker?.close();
  });

  it('read as expired once expires_at passes: listed under expired, 409 to approve or deny, gone from the stream', async () => {
    const created = (await broker.postJson('/admin/approvals', request({ expires_in: 30 }), admin)).body;
    const decidedEarly = (await broker.postJson('/admin/approvals', request({ expires_in: 30 }), admin)).body;
    assert.equal((await broker.postJson(`/admin/approvals/${decidedEarly.id}/approve`, {}, admin)).status, 200);
    clock += 30_000;
    const expired = await broker.get('/admin/approvals?status=expired', admin);
    checked('GET', '/admin/approvals', expired);
    assert.deepEqual(expired.body.approvals.map((a: { id: string }) => a.id), [created.id]);
    assert.equal(expired.body.approvals[0].status, 'expired');
    assert.equal(Object.hasOwn(expired.body.approvals[0], 'decided_by'), false);
    assert.deepEqual((await broker.get('/admin/approvals?status=pending', admin)).body.approvals, []);
    assert.equal((await broker.get('/admin/approvals?status=approved', admin)).body.approvals[0].id, decidedEarly.id, 'a decided approval stays decided');
    for (const decision of ['approve', 'deny']) {
      const res = checked('POST', `/admin/approvals/${created.id}/${decision}`, await broker.postJson(`/admin/approvals/${created.id}/${decision}`, {}, admin));
      assert.deepEqual([res.status, res.body], [409, { error: 'conflict', error_description: `approval ${created.id} has expired` }]);
    }
    const sse = await openSse(`${broker.url}/admin/revocations/stream`, admin);
    try {
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(sse.events, [], 'the early decision is past its approval\'s expiry: skipped');
    } finally {
      sse.close();
    }
  });
});

describe('approvals while Redis is down', redisTestOptions(), () => {
  let redis: RedisProcess;
  let broker: TestBroker;
  before(async () => {
    // Every acknowledged write is on disk, so the approval made before the kill survives it.
    redis = (await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] }))!;
    broker = await startTestBroker({ env: { MINTGATE_KEK: randomBytes(32).toString('base64'), REDIS_URL: redis.url } });
  });
  after(async () => {
    await broker?.close();
    await redis?.stop();
  });

  it('answers 503 temporarily_unavailable with Retry-After, and works again once it is back', async () => {
    const created = (await broker.postJson('/admin/approvals', request(), admin)).body;
    assert.match(created.id, APPROVAL_ID);
    redis.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const answers = [
      ['POST', '/admin/approvals', await broker.postJson('/admin/approvals', request(), admin)],
      ['GET', '/admin/approvals', await broker.get('/admin/approvals', admin)],
      ['POST', `/admin/approvals/${created.id}/approve`, await broker.postJson(`/admin/approvals/${created.id}/approve`, {}, admin)],
    ] as const;
    for (const [method, path, res] of answers) {
      checked(method, path, res);
      assert.equal(res.status, 503, `${method} ${path}`);
      assert.equal(res.body.error, 'temporarily_unavailable');
      assert.ok(res.headers['retry-after'], 'Retry-After');
    }
    await redis.restart({ keepData: true });
    const deadline = Date.now() + 10_000;
    let res: HttpAnswer;
    do {
      await new Promise((r) => setTimeout(r, 100));
      res = await broker.postJson(`/admin/approvals/${created.id}/approve`, {}, admin);
    } while (res.status === 503 && Date.now() < deadline);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'approved');
  });
});
