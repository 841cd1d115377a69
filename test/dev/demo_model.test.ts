/**
 * The demo model server on a free port, black-box over HTTP: OpenAI-shaped JSON and SSE, the
 * planted secrets (each one caught by the proxy's own detector, and split across stream events),
 * errors, the observer hook and the echo routes the proxy's tests rely on.
 */
import assert from 'node:assert/strict';
import { request } from 'undici';
import { after, before, describe, it } from 'node:test';
import { DEMO_MODELS, DEMO_REPLY, DEMO_SECRETS, DEMO_TOOL_CALL, startDemoModelServer, type DemoModelServer, type DemoRequestInfo } from '../../src/dev/demo_model.js';
import { DETECTOR_TYPES } from '../../src/proxy/mask/detectors.js';
import { maskText } from '../../src/proxy/mask/mask_text.js';

type Json = Record<string, any>;

/** Parses an OpenAI-style SSE body strictly: every event is one `data: ` line and a blank line. */
function sseEvents(body: string): string[] {
  assert.ok(body.endsWith('\n\n'), 'the stream ends with a complete event');
  const events = body.slice(0, -2).split('\n\n');
  for (const e of events) {
    assert.ok(e.startsWith('data: '), `an event is a data line: ${JSON.stringify(e.slice(0, 40))}`);
    assert.ok(!e.includes('\n'), `an event is one line: ${JSON.stringify(e.slice(0, 40))}`);
  }
  return events.map((e) => e.slice('data: '.length));
}

describe('demo model server', () => {
  let model: DemoModelServer;
  const seen: DemoRequestInfo[] = [];

  before(async () => {
    model = await startDemoModelServer({ port: 0, onRequest: (info) => seen.push(info) });
  });
  after(() => model.close());

  const chat = (body: unknown, headers: Record<string, string> = {}) =>
    request(`${model.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const user = (content: string) => [{ role: 'user', content }];

  it('listens on a free port and answers /healthz', async () => {
    assert.ok(model.port > 0);
    assert.equal(model.url, `http://127.0.0.1:${model.port}`);
    const res = await request(`${model.url}/healthz`);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await res.body.json(), { status: 'ok' });
  });

  it('lists demo-small and demo-large at /v1/models', async () => {
    const res = await request(`${model.url}/v1/models`);
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const body = (await res.body.json()) as Json;
    assert.equal(body.object, 'list');
    assert.deepEqual(body.data.map((m: Json) => m.id), ['demo-small', 'demo-large']);
    assert.deepEqual([...DEMO_MODELS], ['demo-small', 'demo-large']);
    for (const m of body.data) assert.equal(m.object, 'model');
  });

  it('plants one secret of every mask type, each caught by the proxy detector for its type', () => {
    assert.deepEqual(Object.keys(DEMO_SECRETS).sort(), [...DETECTOR_TYPES].sort());
    const masked = maskText(DEMO_REPLY, DETECTOR_TYPES);
    for (const type of DETECTOR_TYPES) assert.equal(masked.counts[type], 1, `one [MASKED:${type}] in the reply`);
    for (const [type, secret] of Object.entries(DEMO_SECRETS)) {
      assert.ok(DEMO_REPLY.includes(secret), `${type} is in the reply`);
      assert.ok(!masked.text.includes(secret), `${type} is fully masked`);
    }
    assert.ok(!maskText(DEMO_TOOL_CALL.arguments, DETECTOR_TYPES).text.includes(DEMO_SECRETS.email));
  });

  it('answers a chat request with an OpenAI chat.completion echoing the model', async () => {
    const res = await chat({ model: 'demo-small', messages: user('who is my customer?') });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const body = (await res.body.json()) as Json;
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(body.object, 'chat.completion');
    assert.equal(typeof body.created, 'number');
    assert.equal(body.model, 'demo-small');
    assert.equal(body.choices.length, 1);
    assert.deepEqual(body.choices[0], { index: 0, message: { role: 'assistant', content: DEMO_REPLY, refusal: null }, logprobs: null, finish_reason: 'stop' });
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
    const other = (await (await chat({ model: 'llama-3-8b', messages: user('again') })).body.json()) as Json;
    assert.equal(other.model, 'llama-3-8b', 'any model name is echoed');
    assert.equal(other.choices[0].message.content, DEMO_REPLY, 'the reply is deterministic');
  });

  it('streams chat.completion.chunk events whose deltas add up to the same reply, then [DONE]', async () => {
    const res = await chat({ model: 'demo-large', messages: user('stream it'), stream: true });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    const events = sseEvents(await res.body.text());
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Json);
    assert.ok(chunks.length > 10, `many events (${chunks.length})`);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1, 'one id for the whole stream');
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'demo-large');
      assert.equal(c.choices.length, 1);
      assert.equal(c.choices[0].index, 0);
    }
    assert.deepEqual(chunks[0]!.choices[0].delta, { role: 'assistant', content: '' }, 'the role comes first');
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices[0], { index: 0, delta: {}, logprobs: null, finish_reason: 'stop' });
    for (const c of chunks.slice(0, -1)) assert.equal(c.choices[0].finish_reason, null);

    const deltas = chunks.slice(1, -1).map((c) => c.choices[0].delta.content as string);
    assert.ok(deltas.every((d) => typeof d === 'string' && d.length > 0 && d.length <= 8), 'a few characters per delta');
    assert.equal(deltas.join(''), DEMO_REPLY, 'the deltas add up to the JSON reply');

    // Which events carry part of each secret: every secret straddles events, the card 3 or more.
    const spread = (secret: string) => {
      const start = DEMO_REPLY.indexOf(secret);
      const end = start + secret.length;
      let pos = 0;
      let count = 0;
      for (const d of deltas) {
        if (pos < end && start < pos + d.length) count += 1;
        pos += d.length;
      }
      return count;
    };
    for (const [type, secret] of Object.entries(DEMO_SECRETS)) assert.ok(spread(secret) >= 3, `${type} spans ${spread(secret)} events`);
  });

  it('adds a usage chunk with stream_options.include_usage', async () => {
    const res = await chat({ model: 'demo-small', messages: user('hi'), stream: true, stream_options: { include_usage: true } });
    const events = sseEvents(await res.body.text());
    const usage = JSON.parse(events.at(-2)!) as Json;
    assert.deepEqual(usage.choices, []);
    assert.ok(usage.usage.completion_tokens > 0);
  });

  it('returns a tool call with a secret in its arguments when the user asks for a tool', async () => {
    const json = (await (await chat({ model: 'demo-small', messages: user('use the tool please') })).body.json()) as Json;
    assert.equal(json.choices[0].finish_reason, 'tool_calls');
    assert.equal(json.choices[0].message.content, null);
    assert.deepEqual(json.choices[0].message.tool_calls, [{ id: DEMO_TOOL_CALL.id, type: 'function', function: { name: 'lookup_customer', arguments: DEMO_TOOL_CALL.arguments } }]);
    assert.equal(JSON.parse(DEMO_TOOL_CALL.arguments).customer_email, DEMO_SECRETS.email);

    const events = sseEvents(await (await chat({ model: 'demo-small', messages: user('tool'), stream: true })).body.text());
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Json);
    assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'tool_calls');
    const calls = chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    assert.equal(calls[0].id, DEMO_TOOL_CALL.id);
    assert.equal(calls.map((c: Json) => c.function.arguments).join(''), DEMO_TOOL_CALL.arguments);
    assert.ok(calls.length >= 4, 'the arguments arrive in several deltas');
  });

  it('repeats the reply with x-demo-repeat (benchmark knob), in JSON and in the stream', async () => {
    const json = (await (await chat({ model: 'demo-small', messages: user('x') }, { 'x-demo-repeat': '50' })).body.json()) as Json;
    assert.equal(json.choices[0].message.content, DEMO_REPLY.repeat(50));
    const events = sseEvents(await (await chat({ model: 'demo-small', messages: user('x'), stream: true }, { 'x-demo-repeat': '50' })).body.text());
    const text = events.slice(1, -2).map((e) => (JSON.parse(e) as Json).choices[0].delta.content).join('');
    assert.equal(text, DEMO_REPLY.repeat(50));
    assert.equal((await chat({ model: 'demo-small', messages: user('x') }, { 'x-demo-repeat': '0' })).statusCode, 400);
  });

  it('refuses bad chat bodies with 400 and an OpenAI-style error', async () => {
    const cases: Array<[string, unknown, string | null]> = [
      ['not JSON', '{"model":', null],
      ['not an object', '[1, 2]', null],
      ['no model', { messages: user('x') }, 'model'],
      ['empty model', { model: '', messages: user('x') }, 'model'],
      ['no messages', { model: 'demo-small' }, 'messages'],
      ['empty messages', { model: 'demo-small', messages: [] }, 'messages'],
      ['a message that is not an object', { model: 'demo-small', messages: ['hi'] }, 'messages.[0]'],
      ['an unknown role', { model: 'demo-small', messages: [{ role: 'wizard', content: 'x' }] }, 'messages.[0].role'],
      ['content that is a number', { model: 'demo-small', messages: [{ role: 'user', content: 7 }] }, 'messages.[0].content'],
      ['stream that is a string', { model: 'demo-small', messages: user('x'), stream: 'yes' }, 'stream'],
    ];
    for (const [name, body, param] of cases) {
      const res = await chat(body);
      assert.equal(res.statusCode, 400, name);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const { error } = (await res.body.json()) as Json;
      assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], name);
      assert.equal(error.type, 'invalid_request_error', name);
      assert.equal(error.param, param, name);
      assert.equal(typeof error.message, 'string');
    }
  });

  it('refuses a chat body over 1 MiB with 413', async () => {
    const res = await chat({ model: 'demo-small', messages: user('x'.repeat(1024 * 1024)) });
    assert.equal(res.statusCode, 413);
    assert.equal(((await res.body.json()) as Json).error.type, 'invalid_request_error');
  });

  it('exports a model (the approval demo route)', async () => {
    const res = await request(`${model.url}/v1/models/demo-large/export`, { method: 'POST' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await res.body.json(), { exported: 'demo-large' });
  });

  it('serves a fake secrets file under /secrets/ (what the proxy must block)', async () => {
    const res = await request(`${model.url}/secrets/db.env`);
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(await res.body.text(), /DATABASE_URL=/);
  });

  it('echoes a request body with its content type at /v1/echo', async () => {
    const payload = Buffer.from(JSON.stringify({ password: 'p', nested: { n: 1 } }));
    const res = await request(`${model.url}/v1/echo`, { method: 'POST', headers: { 'content-type': 'application/vnd.demo+json' }, body: payload });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/vnd.demo+json');
    assert.deepEqual(Buffer.from(await res.body.arrayBuffer()), payload);
    const bare = await request(`${model.url}/v1/echo`, { method: 'POST', body: 'plain bytes' });
    assert.equal(bare.headers['content-type'], 'application/octet-stream');
    assert.equal(await bare.body.text(), 'plain bytes');
  });

  it('shows the headers it received at /v1/headers', async () => {
    const res = await request(`${model.url}/v1/headers?x=1`, { headers: { 'x-mintgate-jti': 'jti-1', 'x-custom': 'yes' } });
    assert.equal(res.statusCode, 200);
    const headers = (await res.body.json()) as Json;
    assert.equal(headers['x-mintgate-jti'], 'jti-1');
    assert.equal(headers['x-custom'], 'yes');
    assert.equal(headers.authorization, undefined);
  });

  it('answers anything else with 404 JSON', async () => {
    for (const [method, path] of [['GET', '/nope'], ['GET', '/v1/chat/completions'], ['DELETE', '/v1/models'], ['POST', '/v1/models/a/b/export']] as const) {
      const res = await request(`${model.url}${path}`, { method });
      assert.equal(res.statusCode, 404, `${method} ${path}`);
      const { error } = (await res.body.json()) as Json;
      assert.equal(error.code, 'not_found');
      assert.equal(error.message, `Invalid URL (${method} ${path})`);
    }
  });

  it('reports every request to the observer and in `requests`, with its headers', async () => {
    seen.length = 0;
    await (await request(`${model.url}/v1/models?limit=1`, { headers: { 'x-mintgate-sub': 'acme/models@refs/heads/main' } })).body.text();
    const res = await chat({ model: 'demo-small', messages: user('hi') }, { 'x-mintgate-jti': 'j-2' });
    await res.body.text();
    assert.equal(seen.length, 2);
    assert.deepEqual({ ...seen[0]!, headers: undefined }, { method: 'GET', path: '/v1/models', url: '/v1/models?limit=1', headers: undefined });
    assert.equal(seen[0]!.headers['x-mintgate-sub'], 'acme/models@refs/heads/main');
    assert.equal(seen[1]!.path, '/v1/chat/completions');
    assert.equal(seen[1]!.headers['x-mintgate-jti'], 'j-2');
    assert.equal(seen[1]!.headers.authorization, undefined, 'no Authorization reached the upstream');
    assert.deepEqual(model.requests.slice(-2), seen);
  });
});

describe('demo model server options', () => {
  it('keeps only the last keepRequests requests', async () => {
    const model = await startDemoModelServer({ keepRequests: 2 });
    try {
      for (const p of ['/a', '/b', '/c']) await (await request(`${model.url}${p}`)).body.text();
      assert.deepEqual(model.requests.map((r) => r.path), ['/b', '/c']);
    } finally {
      await model.close();
    }
  });

  it('waits chunkDelayMs between stream events and honours chunkChars', async () => {
    const model = await startDemoModelServer({ chunkDelayMs: 2, chunkChars: 64 });
    try {
      const started = Date.now();
      const res = await request(`${model.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }) });
      const events = sseEvents(await res.body.text());
      const deltas = events.slice(1, -2).map((e) => (JSON.parse(e) as Json).choices[0].delta.content as string);
      assert.equal(deltas.join(''), DEMO_REPLY);
      assert.ok(deltas.slice(0, -1).every((d) => d.length === 64));
      assert.ok(Date.now() - started >= 2 * (events.length - 1), 'the delays add up');
    } finally {
      await model.close();
    }
  });

  it('ends a stream in progress on close', async () => {
    const model = await startDemoModelServer({ chunkDelayMs: 50 });
    const res = await request(`${model.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }) });
    assert.equal(res.statusCode, 200);
    const text = res.body.text().catch(() => 'aborted');
    await model.close();
    assert.ok(!(await text).includes('[DONE]'));
  });

  it('refuses bad options at start-up', async () => {
    await assert.rejects(startDemoModelServer({ port: -1 }), TypeError);
    await assert.rejects(startDemoModelServer({ chunkChars: 0 }), TypeError);
    await assert.rejects(startDemoModelServer({ chunkDelayMs: 1.5 }), TypeError);
  });
});
