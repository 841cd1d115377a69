/**
 * A model server for proxy tests that records what reached it: every request's method, URL,
 * headers and body. Its answers are chosen per path; a test may replace the handler.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export type UpstreamHandler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

export interface RecordingUpstream {
  url: string;
  seen: SeenRequest[];
  /** Replaces the handler (null restores the default). */
  handle(handler: UpstreamHandler | null): void;
  close(): Promise<void>;
}

/** The secrets the default chat answer plants (each must come back masked). */
export const PLANTED = {
  email: 'jane.doe@example.com',
  credit_card: '4111 1111 1111 1111',
  aws_access_key: 'AKIA4HJQ2W3XK5L6MNOP',
};

export const defaultHandler: UpstreamHandler = (req, body, res) => {
  const path = (req.url ?? '').split('?')[0];
  if (path === '/v1/chat/completions') {
    const model = (JSON.parse(body || '{}') as { model?: string }).model ?? 'unknown';
    const text = JSON.stringify({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: `Mail ${PLANTED.email}, card ${PLANTED.credit_card}, key ${PLANTED.aws_access_key}.` }, finish_reason: 'stop' }],
      password: 'hunter2',
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(text);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
  res.end(JSON.stringify({ ok: true, method: req.method, path }));
};

export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const seen: SeenRequest[] = [];
  let handler: UpstreamHandler = defaultHandler;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, body });
      handler(req, body, res);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    handle(h) {
      handler = h ?? defaultHandler;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
