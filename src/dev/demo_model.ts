/**
 * The demo model server (DESIGN.md, `src/dev`): a small OpenAI-style upstream for the proxy's
 * demo, its tests and the benchmarks. Every reply is deterministic and carries planted, fake
 * secrets of each masking type (CONTRACT section 7), so what the proxy masks is visible.
 *
 * Built on `node:http` alone: as the benchmark upstream it must cost as little as possible per
 * request (no framework, no per-request allocation beyond the reply itself).
 *
 * | route | answer |
 * |---|---|
 * | `GET /healthz` | 200 `{"status":"ok"}` |
 * | `GET /v1/models` | `{"object":"list","data":[demo-small, demo-large]}` |
 * | `POST /v1/chat/completions` | `chat.completion` JSON, or with `"stream": true` SSE `chat.completion.chunk` events then `data: [DONE]` |
 * | `POST /v1/models/{id}/export` | 200 `{"exported": id}` (the approval demo route) |
 * | `GET /secrets/...` | 200 a fake secrets file (the proxy's config blocks this route) |
 * | `POST /v1/echo` | the request body, with the request's content type |
 * | `GET /v1/headers` | the request headers as JSON (what the upstream received) |
 * | anything else | 404 OpenAI-style error JSON |
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The models `GET /v1/models` lists. Chat accepts any model name and echoes it. */
export const DEMO_MODELS: readonly string[] = Object.freeze(['demo-small', 'demo-large']);

const b64u = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * The fake secrets planted in every reply, keyed by the proxy's mask type (CONTRACT section 7).
 * None is a live credential: the card is the well-known Visa test number, the IBAN the
 * published UK example, the key and tokens made up for this demo. Each passes the proxy's
 * detector for its type (checked by test/dev/demo_model.test.ts). The AWS key is deliberately
 * not AWS's documentation key `AKIAIOSFODNN7EXAMPLE`: the detector leaves documentation keys
 * alone, and the demo is meant to show a mask.
 */
export const DEMO_SECRETS = Object.freeze({
  email: 'jane.doe@example.com',
  phone: '+1 (415) 555-0134',
  credit_card: '4111 1111 1111 1111',
  us_ssn: '536-22-1784',
  iban: 'GB82 WEST 1234 5698 7654 32',
  aws_access_key: 'AKIAZDEMOMINTGATE234',
  api_key: 'sk-proj-mintgateDemo4Kq9T3BlbkFJdemoOnly7Zp2',
  jwt: `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u({ sub: 'demo-user', iss: 'https://demo.invalid', iat: 1700000000 })}.ZGVtby1zaWduYXR1cmUtbm90LXJlYWw`,
  bearer_token: 'mgdemo.5fK2qX8vLr3Tz9Wn',
  private_key: [
    '-----BEGIN PRIVATE KEY-----',
    'MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDmintgateDemoKe',
    'yNotReal0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU',
    '-----END PRIVATE KEY-----',
  ].join('\n'),
});

/** The assistant's reply to every chat request (the text the stream's deltas add up to). */
export const DEMO_REPLY = [
  'Here is the customer record you asked for:',
  `- email: ${DEMO_SECRETS.email}`,
  `- phone: ${DEMO_SECRETS.phone}`,
  `- card: ${DEMO_SECRETS.credit_card}`,
  `- SSN: ${DEMO_SECRETS.us_ssn}`,
  `- IBAN: ${DEMO_SECRETS.iban}`,
  `- AWS access key id: ${DEMO_SECRETS.aws_access_key}`,
  `- OpenAI key: ${DEMO_SECRETS.api_key}`,
  `- session JWT: ${DEMO_SECRETS.jwt}`,
  `- Authorization: Bearer ${DEMO_SECRETS.bearer_token}`,
  '- signing key:',
  DEMO_SECRETS.private_key,
  'None of the values above should reach you unmasked.',
  '',
].join('\n');

/** The tool call returned when the last user message mentions `tool`. */
export const DEMO_TOOL_CALL = Object.freeze({
  id: 'call_demo_lookup_customer',
  name: 'lookup_customer',
  arguments: JSON.stringify({ customer_email: DEMO_SECRETS.email, card_number: DEMO_SECRETS.credit_card, api_key: DEMO_SECRETS.api_key }),
});

/** What the observer hook and `requests` see of each request, on arrival (before its body). */
export interface DemoRequestInfo {
  method: string;
  /** The path without the query string. */
  path: string;
  /** The request target as sent (path and query). */
  url: string;
  headers: IncomingHttpHeaders;
}

export interface DemoModelOptions {
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Milliseconds to wait before each stream event after the first. Default 0 (no wait). */
  chunkDelayMs?: number;
  /** Characters of reply text per stream event. Default 4 (about one token; every planted secret spans 3+ events). */
  chunkChars?: number;
  /** How many recent requests `requests` keeps, oldest dropped first. Default 100; 0 keeps none. */
  keepRequests?: number;
  /** Called synchronously as each request arrives, before its body is read. */
  onRequest?: (info: DemoRequestInfo) => void;
  /** One line per finished response (`METHOD path status`); never headers or bodies. */
  log?: (line: string) => void;
}

export interface DemoModelServer {
  /** Base URL, e.g. `http://127.0.0.1:9000` (loopback when listening on every address). */
  url: string;
  port: number;
  server: Server;
  /** The last `keepRequests` requests, oldest first. */
  readonly requests: readonly DemoRequestInfo[];
  /** Stops listening and ends every connection, streams in progress included. */
  close(): Promise<void>;
}

/** Largest chat request body read, in bytes (1 MiB); larger is 413. */
const MAX_CHAT_BODY_BYTES = 1024 * 1024;
/** Largest `x-demo-repeat` (the reply repeated N times in one answer, for throughput benchmarks). */
const MAX_REPEAT = 10_000;
/** Stream events are written in batches of about this many bytes when there is no delay. */
const WRITE_BATCH_BYTES = 16 * 1024;
const MODELS_CREATED = 1_700_000_000;
const FINGERPRINT = 'fp_mintgate_demo';
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const EXPORT_ROUTE = /^\/v1\/models\/([^/]+)\/export$/;

const MODELS_BODY = JSON.stringify({
  object: 'list',
  data: DEMO_MODELS.map((id) => ({ id, object: 'model', created: MODELS_CREATED, owned_by: 'mintgate-demo' })),
});

class BadRequest extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
    readonly status = 400,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`. */
function sendError(res: ServerResponse, status: number, message: string, param: string | null = null, code: string | null = null): void {
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  sendJson(res, status, JSON.stringify({ error: { message, type, param, code } }));
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BadRequest(`request body larger than ${limit} bytes`, null, 413));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface ChatRequest {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  wantsTool: boolean;
  promptChars: number;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : '')).join('');
}

/** Validates an OpenAI chat request just enough to answer like OpenAI would. */
function parseChatRequest(raw: Buffer): ChatRequest {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new BadRequest('We could not parse the JSON body of your request. (The body must be a JSON object.)');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('The request body must be a JSON object.');
  const { model, messages, stream, stream_options: streamOptions } = body as Record<string, unknown>;
  if (typeof model !== 'string' || model === '') throw new BadRequest('you must provide a model parameter', 'model');
  if (!Array.isArray(messages) || messages.length === 0) throw new BadRequest("'messages' must be a non-empty array", 'messages');
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') throw new BadRequest("'stream' must be a boolean", 'stream');
  let promptChars = 0;
  let lastUser = '';
  messages.forEach((m: unknown, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new BadRequest(`messages[${i}] must be an object`, `messages.[${i}]`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || !ROLES.has(role)) throw new BadRequest(`messages[${i}].role must be one of ${[...ROLES].join(', ')}`, `messages.[${i}].role`);
    if (content !== undefined && content !== null && typeof content !== 'string' && !Array.isArray(content)) {
      throw new BadRequest(`messages[${i}].content must be a string or an array of parts`, `messages.[${i}].content`);
    }
    const text = textOf(content);
    promptChars += text.length;
    if (role === 'user') lastUser = text;
  });
  const includeUsage = typeof streamOptions === 'object' && streamOptions !== null && (streamOptions as { include_usage?: unknown }).include_usage === true;
  return { model, stream: stream === true, includeUsage, wantsTool: lastUser.includes('tool'), promptChars };
}

/** Splits `text` into pieces of `size` UTF-16 units, never between a surrogate pair. */
function pieces(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    let end = Math.min(text.length, i + size);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end += 1;
    out.push(text.slice(i, end));
    i = end;
  }
  return out;
}

/** About four characters a token, like OpenAI's English average. */
const tokens = (chars: number): number => Math.ceil(chars / 4);

function repeatOf(req: IncomingMessage): number {
  const raw = req.headers['x-demo-repeat'];
  if (raw === undefined) return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_REPEAT) throw new BadRequest(`x-demo-repeat must be an integer from 1 to ${MAX_REPEAT}`, 'x-demo-repeat');
  return n;
}

/** Validates the options once, at start-up (a programming mistake is a TypeError here, not later). */
function checkOptions(options: DemoModelOptions): Required<Pick<DemoModelOptions, 'host' | 'port' | 'chunkDelayMs' | 'chunkChars' | 'keepRequests'>> {
  const { host = '127.0.0.1', port = 0, chunkDelayMs = 0, chunkChars = 4, keepRequests = 100 } = options;
  const whole = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new TypeError(`demo model server: ${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  };
  whole('port', port, 0, 65535);
  whole('chunkDelayMs', chunkDelayMs, 0, 60_000);
  whole('chunkChars', chunkChars, 1, 1 << 20);
  whole('keepRequests', keepRequests, 0, 1_000_000);
  return { host, port, chunkDelayMs, chunkChars, keepRequests };
}

/**
 * Starts the demo model server on `host:port` (port 0: a free one).
 *
 * Benchmark knob: a chat request with header `x-demo-repeat: N` (1 to 10,000) gets the reply
 * text repeated N times, for throughput runs over large bodies and long streams.
 */
export async function startDemoModelServer(options: DemoModelOptions = {}): Promise<DemoModelServer> {
  const { host, port, chunkDelayMs, chunkChars, keepRequests } = checkOptions(options);
  const { onRequest, log } = options;
  const requests: DemoRequestInfo[] = [];
  let completions = 0;

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const repeat = repeatOf(req);
    const request = parseChatRequest(await readBody(req, MAX_CHAT_BODY_BYTES));
    completions += 1;
    const id = `chatcmpl-demo-${completions}`;
    const created = Math.floor(Date.now() / 1000);
    const text = repeat === 1 ? DEMO_REPLY : DEMO_REPLY.repeat(repeat);
    const completionChars = request.wantsTool ? DEMO_TOOL_CALL.arguments.length : text.length;
    const usage = { prompt_tokens: tokens(request.promptChars), completion_tokens: tokens(completionChars), total_tokens: tokens(request.promptChars) + tokens(completionChars) };
    if (!request.stream) {
      const message = request.wantsTool
        ? { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: DEMO_TOOL_CALL.id, type: 'function', function: { name: DEMO_TOOL_CALL.name, arguments: DEMO_TOOL_CALL.arguments } }] }
        : { role: 'assistant', content: text, refusal: null };
      const finish = request.wantsTool ? 'tool_calls' : 'stop';
      sendJson(res, 200, JSON.stringify({ id, object: 'chat.completion', created, model: request.model, system_fingerprint: FINGERPRINT, choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage }));
      return;
    }
    await stream(res, request, id, created, text, usage);
  }

  async function stream(res: ServerResponse, request: ChatRequest, id: string, created: number, text: string, usage: Record<string, number>): Promise<void> {
    // Every event shares this envelope; only the delta and finish_reason change. Building the
    // JSON around a stringified delta keeps each event valid JSON without re-serialising it.
    const head = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(request.model)},"system_fingerprint":"${FINGERPRINT}","choices":[{"index":0,"delta":`;
    const event = (delta: unknown, finish: string | null = null) => `${head}${JSON.stringify(delta)},"logprobs":null,"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]}\n\n`;
    const events: string[] = [event({ role: 'assistant', content: '' })];
    if (request.wantsTool) {
      const call = DEMO_TOOL_CALL;
      events.push(event({ tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] }));
      for (const piece of pieces(call.arguments, chunkChars)) events.push(event({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
      events.push(event({}, 'tool_calls'));
    } else {
      for (const piece of pieces(text, chunkChars)) events.push(event({ content: piece }));
      events.push(event({}, 'stop'));
    }
    if (request.includeUsage) {
      events.push(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: request.model, system_fingerprint: FINGERPRINT, choices: [], usage })}\n\n`);
    }
    events.push('data: [DONE]\n\n');

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    res.flushHeaders();
    let gone = false;
    res.once('close', () => (gone = true));
    const drained = () => new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.once('drain', done);
      res.once('close', done);
    });
    if (chunkDelayMs === 0) {
      let batch = '';
      for (const e of events) {
        batch += e;
        if (batch.length < WRITE_BATCH_BYTES) continue;
        if (gone) return;
        const ok = res.write(batch);
        batch = '';
        if (!ok) await drained();
      }
      if (!gone) res.end(batch);
      return;
    }
    for (const [i, e] of events.entries()) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, chunkDelayMs));
      if (gone) return;
      if (!res.write(e)) await drained();
    }
    if (!gone) res.end();
  }

  async function route(req: IncomingMessage, res: ServerResponse, method: string, path: string): Promise<void> {
    const read = method === 'GET' || method === 'HEAD';
    if (read && path === '/healthz') return sendJson(res, 200, '{"status":"ok"}');
    if (read && path === '/v1/models') return sendJson(res, 200, MODELS_BODY);
    if (method === 'POST' && path === '/v1/chat/completions') return chat(req, res);
    if (method === 'POST') {
      const exported = EXPORT_ROUTE.exec(path);
      if (exported) {
        let model: string;
        try {
          model = decodeURIComponent(exported[1]!);
        } catch {
          throw new BadRequest('the model id is not valid percent-encoding', 'model');
        }
        return sendJson(res, 200, JSON.stringify({ exported: model }));
      }
    }
    if (read && (path === '/secrets' || path.startsWith('/secrets/'))) {
      const body = [
        `# ${path}: a file that must never leave the model host (the proxy blocks /secrets/**)`,
        'DATABASE_URL=postgres://model:hunter2-demo@db.internal:5432/models',
        'MODEL_SIGNING_SECRET=demo-9f2c7a41e8b35d60',
        `AWS_ACCESS_KEY_ID=${DEMO_SECRETS.aws_access_key}`,
        '',
      ].join('\n');
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (method === 'POST' && path === '/v1/echo') {
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    if (read && path === '/v1/headers') return sendJson(res, 200, JSON.stringify(req.headers));
    sendError(res, 404, `Invalid URL (${method} ${path})`, null, 'not_found');
  }

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (keepRequests > 0 || onRequest) {
      const info: DemoRequestInfo = { method, path, url, headers: req.headers };
      if (keepRequests > 0) {
        if (requests.length >= keepRequests) requests.shift();
        requests.push(info);
      }
      try {
        onRequest?.(info);
      } catch (err) {
        log?.(`onRequest threw: ${(err as Error).message}`);
      }
    }
    if (log) res.once('finish', () => log(`${method} ${path} ${res.statusCode}`));
    req.on('error', () => res.destroy()); // a client that went away; nothing to answer
    route(req, res, method, path).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof BadRequest) sendError(res, err.status, err.message, err.param);
      else sendError(res, 500, 'The demo model server failed.');
    });
  });
  server.keepAliveTimeout = 65_000; // outlive the proxy's pooled connections (and load balancers')

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}`,
    port: bound,
    server,
    get requests() {
      return requests;
    },
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      return closed;
    },
  };
}
