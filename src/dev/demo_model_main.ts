/**
 * `node dist/dev/demo_model_main.js`: the demo model server as a process (docker-compose's
 * `model` service, local development). Environment: `HOST` (default 127.0.0.1), `PORT`
 * (default 9000), `DEMO_CHUNK_DELAY_MS` (milliseconds between stream events, default 0),
 * `LOG_LEVEL=debug` (one line per response). SIGTERM and SIGINT close it and exit 0.
 */
import { startDemoModelServer } from './demo_model.js';

function integerEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`demo model server: ${name}="${raw}" is not an integer from ${min} to ${max}\n`);
    process.exit(2);
  }
  return n;
}

const host = process.env.HOST || '127.0.0.1';
const port = integerEnv('PORT', 9000, 0, 65535);
const chunkDelayMs = integerEnv('DEMO_CHUNK_DELAY_MS', 0, 0, 60_000);
const log = process.env.LOG_LEVEL === 'debug' ? (line: string) => process.stdout.write(`demo model server: ${line}\n`) : undefined;

let server: Awaited<ReturnType<typeof startDemoModelServer>>;
try {
  server = await startDemoModelServer({ host, port, chunkDelayMs, keepRequests: 0, ...(log ? { log } : {}) });
} catch (err) {
  process.stderr.write(`demo model server: cannot listen on ${host}:${port}: ${(err as Error).message}\n`);
  process.exit(1);
}
process.stdout.write(`demo model server listening on ${server.url} (OpenAI-style; models demo-small, demo-large)\n`);

const stop = () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
