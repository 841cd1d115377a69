/**
 * `node dist/dev/demo_model_main.js` as compose runs it: HOST/PORT from the environment, one
 * line on start, SIGTERM exits 0; a bad PORT is a usage error (exit 2).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../support/ports.js';

const MAIN = resolve('dist/dev/demo_model_main.js');

function run(env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [MAIN], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

describe('demo model server entry point', () => {
  it('listens on HOST:PORT, logs one line, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const proc = run({ HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' });
    try {
      const deadline = Date.now() + 10_000;
      while (!proc.stdout().includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      assert.equal(proc.stdout(), `demo model server listening on http://127.0.0.1:${port} (OpenAI-style; models demo-small, demo-large)\n`);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(res.status, 200);
      proc.child.kill('SIGTERM');
      assert.equal(await proc.exited, 0);
      assert.equal(proc.stdout().split('\n').filter(Boolean).length, 1, 'one line, no request log at info');
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  it('refuses a PORT that is not a port (exit 2)', async () => {
    const proc = run({ PORT: 'ninety' });
    assert.equal(await proc.exited, 2);
    assert.match(proc.stderr(), /PORT="ninety"/);
  });
});
