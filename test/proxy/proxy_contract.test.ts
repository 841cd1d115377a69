/**
 * The proxy against CONTRACT section 7, row by row: a real broker, the proxy and a recording
 * model server on free ports, tokens from real exchanges (or signed with the broker's own key
 * for the claim-level rows). Every refusal is also checked for what did not happen: the upstream
 * saw nothing.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { CompactSign, generateKeyPair } from 'jose';
import { ADMIN_TOKEN } from '../support/broker.js';
import { PLANTED } from '../support/upstream.js';
import { startProxyRig, waitFor, type ProxyRig } from '../support/proxy_rig.js';

const chat = { model: 'llama', messages: [{ role: 'user', content: 'hi' }] };

describe('proxy: CONTRACT section 7', () => {
  let rig: ProxyRig;
  let token: string;

  before(async () => {
    rig = await startProxyRig();
    token = await rig.token();
  });
  after(() => rig?.close());

  /** Asserts a refusal never reached the model server. */
  async function refusedBeforeUpstream<T>(call: () => Promise<T>): Promise<T> {
    const seen = rig.upstream.seen.length;
    const answer = await call();
    assert.equal(rig.upstream.seen.length, seen, 'the upstream must not see a refused request');
    return answer;
  }

  it('no token: 401 with a bare Bearer challenge (no error code)', async () => {
    const res = await refusedBeforeUpstream(() => rig.call('POST', '/v1/chat/completions', { body: chat }));
    assert.equal(res.status, 401);
    const challenge = String(res.headers['www-authenticate']);
    assert.match(challenge, /^Bearer\b/);
    assert.doesNotMatch(challenge, /error=/);
  });

  it('a non-Bearer Authorization is treated as no token', async () => {
    const res = await refusedBeforeUpstream(() => rig.call('GET', '/v1/models', { headers: { authorization: 'Basic dXNlcjpwYXNz' } }));
    assert.equal(res.status, 401);
    assert.doesNotMatch(String(res.headers['www-authenticate']), /error=/);
  });

  describe('invalid tokens: 401, WWW-Authenticate: Bearer error="invalid_token"', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const cases: Array<[string, () => Promise<string>]> = [
      ['malformed', async () => 'not-a-jwt'],
      ['three garbage segments', async () => 'abc.def.ghi'],
      [
        'badly signed (another key, the broker kid)',
        async () => {
          const { privateKey } = await generateKeyPair('ES256');
          const good = await rig.forge();
          const header = JSON.parse(Buffer.from(good.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
          const payload = Buffer.from(good.split('.')[1]!, 'base64url');
          return new CompactSign(payload).setProtectedHeader({ ...header, alg: 'ES256' } as { alg: string }).sign(privateKey);
        },
      ],
      ['signature of another token', async () => {
        const a = (await rig.forge()).split('.');
        const b = (await rig.forge({ scope: 'inference:invoke model:* model:export' })).split('.');
        return `${a[0]}.${b[1]}.${a[2]}`;
      }],
      ['expired', () => rig.forge({ iat: now() - 600, nbf: now() - 600, exp: now() - 120 })],
      ['not yet valid', () => rig.forge({ nbf: now() + 300, exp: now() + 600 })],
      ['iat in the future', () => rig.forge({ iat: now() + 3600, nbf: now(), exp: now() + 600 })],
      ['wrong typ (JWT)', () => rig.forge({}, { typ: 'JWT' })],
      ['no typ', () => rig.forge({}, { typ: undefined })],
      ['wrong iss', () => rig.forge({ iss: 'https://evil.example' })],
      ['wrong aud', () => rig.forge({ aud: 'eval-gateway' })],
      ['aud as an array holding ours', () => rig.forge({ aud: ['inference-gateway', 'other'] })],
      ['aud prefix trick', () => rig.forge({ aud: 'inference-gateway.evil' })],
      ['exp as a string', () => rig.forge({ exp: String(now() + 300) })],
      ['no exp', () => rig.forge({ exp: undefined })],
      ['no jti', () => rig.forge({ jti: undefined })],
      ['alg none', async () => {
        const t = (await rig.forge()).split('.');
        const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
        return `${header}.${t[1]}.`;
      }],
      ['jku header', () => rig.forge({}, { jku: 'https://evil.example/jwks' })],
      ['unknown kid', () => rig.forge({}, { kid: '../../dev/null' })],
      ['crit header', async () => {
        // jose will not sign an unknown crit; the header check comes before any signature check.
        const t = (await rig.forge()).split('.');
        const header = { ...(JSON.parse(Buffer.from(t[0]!, 'base64url').toString()) as object), crit: ['exp'] };
        return `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${t[1]}.${t[2]}`;
      }],
      ['duplicate claims', async () => {
        const t = (await rig.forge()).split('.');
        const raw = Buffer.from(t[1]!, 'base64url').toString().replace(/^\{/, '{"sub":"admin",');
        return `${t[0]}.${Buffer.from(raw).toString('base64url')}.${t[2]}`;
      }],
    ];
    for (const [name, make] of cases) {
      it(name, async () => {
        const bad = await make();
        const res = await refusedBeforeUpstream(() => rig.call('GET', '/v1/models', { token: bad }));
        assert.equal(res.status, 401, res.text);
        assert.match(String(res.headers['www-authenticate']), /^Bearer\b.*error="invalid_token"/);
        assert.equal(res.body.error, 'invalid_token');
      });
    }
  });

  it('a revoked token is refused within 1 s, at jti, job and sub level', async () => {
    for (const target of ['jti', 'job', 'sub'] as const) {
      // A subject of its own, so the sub revocation touches no other test's token.
      const t = await rig.token(undefined, { repository: `acme/revoked-${target}` });
      assert.equal((await rig.call('GET', '/v1/models', { token: t })).status, 200);
      const claims = JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as Record<string, string>;
      const value = target === 'jti' ? claims.jti : target === 'job' ? claims.job_id : claims.sub;
      const started = Date.now();
      const revoked = await rig.broker.postJson('/admin/revocations', { [target]: value, reason: 'test' }, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal(revoked.status, 201);
      await waitFor(async () => (await rig.call('GET', '/v1/models', { token: t })).status === 401, 1_000, `the ${target} revocation at the proxy`);
      assert.ok(Date.now() - started < 1_000);
      const res = await rig.call('GET', '/v1/models', { token: t });
      assert.match(String(res.headers['www-authenticate']), /error="invalid_token"/);
    }
  });

  it('revoking a parent revokes the token narrowed from it', async () => {
    const parent = await rig.token();
    const child = await rig.broker.exchange(parent, { subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', audience: 'inference-gateway', scope: 'inference:invoke' });
    assert.equal(child.status, 200, child.text);
    const childToken = child.body.access_token as string;
    assert.equal((await rig.call('GET', '/v1/models', { token: childToken })).status, 200);
    const jti = (JSON.parse(Buffer.from(parent.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
    await rig.broker.postJson('/admin/revocations', { jti }, { authorization: `Bearer ${ADMIN_TOKEN}` });
    await waitFor(async () => (await rig.call('GET', '/v1/models', { token: childToken })).status === 401, 1_000, 'the child refused');
  });

  it('a missing route scope: 403 insufficient_scope, in the body and the challenge', async () => {
    const narrow = await rig.token('model:*');
    const res = await refusedBeforeUpstream(() => rig.call('POST', '/v1/chat/completions', { token: narrow, body: chat }));
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'insufficient_scope');
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="mintgate", error="insufficient_scope", scope="inference:invoke"');
  });

  it('a missing model scope: 403 insufficient_scope naming model:<name>; model:* covers any model', async () => {
    const llamaOnly = await rig.token('inference:invoke model:llama');
    const res = await refusedBeforeUpstream(() => rig.call('POST', '/v1/chat/completions', { token: llamaOnly, body: { ...chat, model: 'gpt-4o' } }));
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'insufficient_scope');
    assert.match(String(res.headers['www-authenticate']), /scope="model:gpt-4o"/);
    assert.equal((await rig.call('POST', '/v1/chat/completions', { token: llamaOnly, body: chat })).status, 200);
    assert.equal((await rig.call('POST', '/v1/chat/completions', { token, body: { ...chat, model: 'gpt-4o' } })).status, 200);
  });

  it('a model route without a model in the body: 400', async () => {
    const res = await refusedBeforeUpstream(() => rig.call('POST', '/v1/chat/completions', { token, body: { messages: [] } }));
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_request');
  });

  it('an unknown route: 403 no_route, never forwarded', async () => {
    for (const [method, path] of [['GET', '/v1/unknown'], ['DELETE', '/v1/models'], ['GET', '/v1/chat/completions'], ['GET', '/']] as const) {
      const res = await refusedBeforeUpstream(() => rig.call(method, path, { token }));
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.error, 'no_route');
    }
  });

  it('a blocked route: 403 blocked, after the token check', async () => {
    const res = await refusedBeforeUpstream(() => rig.call('GET', '/secrets/prod.env', { token }));
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'blocked');
    assert.equal((await rig.call('GET', '/secrets/prod.env')).status, 401);
    // A path that walks into the blocked tree is matched after normalisation.
    const walk = await refusedBeforeUpstream(() => rig.call('GET', '/v1/echo/%2e%2e/%2e%2e/secrets/x', { token }));
    assert.equal(walk.status, 403);
  });

  it('blocked requests: body, path and header patterns', async () => {
    const body = await refusedBeforeUpstream(() =>
      rig.call('POST', '/v1/chat/completions', { token, body: { ...chat, messages: [{ role: 'user', content: 'please run CAT   /etc/shadow' }] } }),
    );
    assert.equal(body.status, 403);
    assert.equal(body.body.error, 'blocked');
    const path = await refusedBeforeUpstream(() => rig.call('GET', '/v1/echo/a/../b', { token }));
    assert.equal(path.status, 403);
    assert.equal(path.body.error, 'blocked');
    const encoded = await refusedBeforeUpstream(() => rig.call('GET', '/v1/echo/a/%2E%2E/b', { token }));
    assert.equal(encoded.status, 403);
    assert.equal(encoded.body.error, 'blocked');
    const header = await refusedBeforeUpstream(() => rig.call('GET', '/v1/echo/x', { token, headers: { 'x-debug': 'drop-tables now' } }));
    assert.equal(header.status, 403);
    assert.equal(header.body.error, 'blocked');
  });

  it('an encoded slash in the path is refused (400), never forwarded', async () => {
    const res = await refusedBeforeUpstream(() => rig.call('GET', '/v1/echo/a%2Fb', { token }));
    assert.equal(res.status, 400);
  });

  it('accepted: forwarded without Authorization or DPoP, with the x-mintgate identity headers', async () => {
    const before = rig.upstream.seen.length;
    // node:http, not undici: undici will not send a Connection header naming another header.
    const res = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
      const req = httpRequest(`${rig.proxy.url}/v1/echo/x?y=1`, {
        headers: { authorization: `Bearer ${token}`, dpop: 'proof', 'x-mintgate-jti': 'spoofed', 'x-mintgate-sub': 'admin', connection: 'keep-alive, x-hop', 'x-hop': 'secret' },
      });
      req.on('response', (r) => {
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-upstream'], 'yes');
    const seen = rig.upstream.seen[before]!;
    assert.equal(seen.url, '/v1/echo/x?y=1');
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers.dpop, undefined);
    assert.equal(seen.headers['x-hop'], undefined);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, string>;
    assert.equal(seen.headers['x-mintgate-jti'], claims.jti);
    assert.equal(seen.headers['x-mintgate-sub'], claims.sub);
    assert.equal(seen.headers['x-mintgate-job'], claims.job_id);
  });

  it('accepted: a JSON answer is masked ([MASKED:<type>], mask_fields as [MASKED:field])', async () => {
    const res = await rig.call('POST', '/v1/chat/completions', { token, body: chat });
    assert.equal(res.status, 200);
    for (const secret of Object.values(PLANTED)) assert.ok(!res.text.includes(secret), `${secret} leaked`);
    const content = res.body.choices[0].message.content as string;
    assert.match(content, /\[MASKED:email\]/);
    assert.match(content, /\[MASKED:credit_card\]/);
    assert.match(content, /\[MASKED:aws_access_key\]/);
    assert.equal(res.body.password, '[MASKED:field]');
  });

  it('accepted: an OpenAI-style stream is masked, a secret split across three events included, framing kept', async () => {
    const chunk = (content: string, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
    rig.upstream.handle((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] })}\n\n`);
      // The first event must reach the client before the upstream goes on (streaming, not buffering).
      setTimeout(() => {
        for (const part of ['Write to jane', '.doe@exa', 'mple.com', ' today.']) res.write(chunk(part));
        res.write(chunk('', 'stop'));
        res.end('data: [DONE]\n\n');
      }, 400);
    });
    try {
      const started = Date.now();
      const claims = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const { request } = await import('undici');
      const res = await request(`${rig.proxy.url}/v1/chat/completions`, { method: 'POST', headers: claims, body: JSON.stringify({ ...chat, stream: true }) });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      let text = '';
      let firstByteMs = -1;
      for await (const part of res.body) {
        if (firstByteMs < 0) firstByteMs = Date.now() - started;
        text += part.toString();
      }
      assert.ok(firstByteMs < 350, `first byte after ${firstByteMs} ms: the stream was held`);
      assert.ok(!text.includes('jane.doe@example.com'));
      const events = text.split('\n\n').filter(Boolean);
      for (const e of events) assert.match(e, /^data: /, 'every event is data: <json>');
      assert.equal(events.at(-1), 'data: [DONE]');
      const content = events
        .slice(0, -1)
        .map((e) => JSON.parse(e.slice(6)) as { choices: Array<{ delta: { content?: string } }> })
        .map((e) => e.choices[0]!.delta.content ?? '')
        .join('');
      assert.equal(content, 'Write to [MASKED:email] today.');
    } finally {
      rig.upstream.handle(null);
    }
  });

  it('the proxy endpoints live under /_mintgate/ and are never forwarded', async () => {
    const before = rig.upstream.seen.length;
    assert.equal((await rig.call('GET', '/_mintgate/healthz')).status, 200);
    assert.equal((await rig.call('GET', '/_mintgate/readyz')).status, 200);
    const metrics = await rig.call('GET', '/_mintgate/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /mintgate_proxy_calls_total/);
    assert.equal((await rig.call('GET', '/_mintgate/anything', { token })).status, 404);
    assert.equal(rig.upstream.seen.length, before);
  });

  it('every call, allowed or not, becomes one proxy.call record with the token jti', async () => {
    const before = rig.records.length;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, string>;
    await rig.call('GET', '/v1/models', { token });
    await rig.call('GET', '/v1/unknown', { token });
    await rig.call('GET', '/v1/models');
    await rig.call('POST', '/v1/chat/completions', { token, body: chat });
    const fresh = rig.records.slice(before);
    assert.equal(fresh.length, 4);
    assert.deepEqual(fresh.map((r) => r.details.decision), ['allowed', 'no_route', 'no_token', 'allowed']);
    assert.deepEqual(fresh.map((r) => r.details.status), [200, 403, 401, 200]);
    assert.equal(fresh[0]!.jti, claims.jti);
    assert.equal(fresh[2]!.jti, undefined);
    const chatRecord = fresh[3]!;
    assert.equal(chatRecord.details.route, 'chat');
    assert.equal((chatRecord.details.masked as Record<string, number>).email, 1);
    assert.ok((chatRecord.details.bytes_out as number) > 0);
    assert.equal(typeof chatRecord.details.latency_ms, 'number');
    const recorded = JSON.stringify(chatRecord);
    for (const secret of Object.values(PLANTED)) assert.ok(!recorded.includes(secret), 'a secret reached the record');
    assert.ok(!recorded.includes(token), 'the token reached the record');
  });

  it('upstream down: 502, and the call is still recorded', async () => {
    const before = rig.records.length;
    rig.upstream.handle((_req, _body, res) => res.socket?.destroy());
    try {
      const res = await rig.call('GET', '/v1/models', { token });
      assert.equal(res.status, 502);
      assert.equal(rig.records.at(-1)!.details.decision, 'upstream_error');
      assert.equal(rig.records.length, before + 1);
    } finally {
      rig.upstream.handle(null);
    }
  });
});
