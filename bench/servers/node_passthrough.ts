/**
 * The floor under the mintgate proxy, for context: the least a proxy written on the same stack
 * does per request, in its own process. A `node:http` server reads the request body (the
 * mintgate proxy reads it too, for the model scope and the body block rule), forwards it through
 * one undici keep-alive pool (as src/proxy/upstream.ts does) without the client's
 * `Authorization`, and streams the answer back chunk by chunk (so chunked, as the masking proxy
 * answers). No token check, no routing, no masking, no record.
 *
 * Input: `BENCH_UPSTREAM` (the upstream's origin).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { serveChild } from '../support/child.js';

await serveChild(async () => {
  const upstream = process.env.BENCH_UPSTREAM;
  if (!upstream) throw new Error('BENCH_UPSTREAM is not set');
  const pool = new Pool(upstream, { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = { 'content-length': String(body.length) };
      const type = req.headers['content-type'];
      if (type) headers['content-type'] = type;
      pool.request({ method: (req.method ?? 'GET') as 'POST', path: req.url ?? '/', headers, body }).then(
        async (up) => {
          const type = up.headers['content-type'];
          res.writeHead(up.statusCode, type ? { 'content-type': type } : {});
          for await (const chunk of up.body) res.write(chunk);
          res.end();
        },
        () => {
          res.writeHead(502).end();
        },
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    info: { url: `http://127.0.0.1:${port}` },
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.close();
    },
  };
});
