/**
 * The CLI, black-box: `mintgate serve` in dev mode and with a config file, the printed quickstart
 * pasted into bash, and the exit statuses of CONTRACT section 2 (0, 1 refused, 2 usage).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { runCli, startCli } from '../support/cli.js';
import { freePort } from '../support/ports.js';

const exec = promisify(execFile);

describe('mintgate CLI', () => {
  it('lists every command in --help', async () => {
    const res = await runCli(['--help']);
    assert.equal(res.code, 0);
    for (const command of ['serve', 'exchange', 'revoke', 'keys', 'approvals']) assert.match(res.stdout, new RegExp(`\\b${command}\\b`));
    for (const command of ['serve', 'exchange', 'revoke', 'keys', 'approvals']) {
      const sub = await runCli([command, '--help']);
      assert.equal(sub.code, 0, command);
    }
  });

  it('runs the scripted demo (npm run demo) to the end', async () => {
    const { stdout } = await exec(process.execPath, ['scripts/demo.mjs'], { timeout: 60_000 });
    assert.match(stdout, /already been used/);
    assert.match(stdout, /job token: active=false/);
    assert.match(stdout, /child token: active=false/);
  });

  it('exits 2 on usage errors', async () => {
    assert.equal((await runCli(['nonsense'])).code, 2);
    assert.equal((await runCli(['exchange', '--broker', 'http://127.0.0.1:1'])).code, 2, 'missing required options');
    const revoke = await runCli(['revoke', '--broker', 'http://127.0.0.1:1', '--jti', 'a', '--job', 'b'], { env: { MINTGATE_ADMIN_TOKEN: 'x' } });
    assert.equal(revoke.code, 2);
    assert.match(revoke.stderr, /exactly one of/);
    const ttl = await runCli(['exchange', '--broker', 'http://127.0.0.1:1', '--subject-token', '-', '--audience', 'a', '--ttl', 'soon'], { input: 'x.y.z' });
    assert.equal(ttl.code, 2);
  });

  it('stops serve on a bad config with a message naming the key (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mintgate-cli-'));
    const file = join(dir, 'mintgate.yaml');
    writeFileSync(file, 'tokens: { max_ttl: 15m }\nkeys: { retain_after: 5m }\n');
    const res = await runCli(['serve', '--config', file, '--port', String(await freePort())]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /keys\.retain_after/);
  });

  describe('with a real config', () => {
    let server: Awaited<ReturnType<typeof startCli>>;
    let url: string;
    before(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'mintgate-cli-'));
      const port = await freePort();
      const file = join(dir, 'mintgate.yaml');
      writeFileSync(file, 'trust:\n  - name: gh\n    issuer: https://token.actions.githubusercontent.com\n    audiences: [mintgate]\n    rules:\n      - name: r\n        grant: { audiences: [gw], scopes: [s] }\n');
      url = `http://127.0.0.1:${port}`;
      server = await startCli(['serve', '--config', file, '--port', String(port)], /listening/, { env: { MINTGATE_KEYS_DIR: join(dir, 'keys'), MINTGATE_ADMIN_TOKEN: 'cli-admin' } });
    });
    after(() => server?.stop());

    it('has no /dev routes outside dev mode', async () => {
      const res = await fetch(`${url}/dev/oidc/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(res.status, 404);
    });

    it('exits 1 with the error when the broker refuses', async () => {
      const res = await runCli(['exchange', '--broker', url, '--subject-token', '-', '--audience', 'gw'], { input: 'not-a-token' });
      assert.equal(res.code, 1);
      assert.match(res.stderr, /invalid_request/);
      const noCred = await runCli(['keys', 'list', '--broker', url], { env: { MINTGATE_ADMIN_TOKEN: '', MINTGATE_TOKEN: '' } });
      assert.equal(noCred.code, 1);
      const wrongCred = await runCli(['keys', 'list', '--broker', url], { env: { MINTGATE_ADMIN_TOKEN: 'wrong' } });
      assert.equal(wrongCred.code, 1);
      assert.match(wrongCred.stderr, /invalid_token/);
    });

    it('lists and rotates keys with the admin secret', async () => {
      const list = await runCli(['keys', 'list', '--broker', url, '--json'], { env: { MINTGATE_ADMIN_TOKEN: 'cli-admin' } });
      assert.equal(list.code, 0, list.stderr);
      assert.equal(JSON.parse(list.stdout).keys[0].state, 'current');
      const rotate = await runCli(['keys', 'rotate', '--broker', url], { env: { MINTGATE_ADMIN_TOKEN: 'cli-admin' } });
      assert.equal(rotate.code, 0, rotate.stderr);
      assert.match(rotate.stdout, /\bnext\b/);
    });
  });

  describe('dev mode (npm start)', () => {
    let server: Awaited<ReturnType<typeof startCli>>;
    let dir: string;
    let port: number;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'mintgate-dev-'));
      port = await freePort();
      // No --config and no mintgate.yaml in the working directory: dev mode.
      server = await startCli(['serve', '--port', String(port)], /curl -s http[^\n]*introspect[^\n]*\n[\s\S]*introspect/, {
        env: { MINTGATE_KEYS_DIR: join(dir, 'keys'), MINTGATE_ADMIN_TOKEN: '', MINTGATE_CONFIG: '', LOG_LEVEL: 'warn' },
      });
    });
    after(() => server?.stop());

    it('README\'s five-minute walkthrough works when pasted (on this test\'s port and keys directory)', async () => {
      const readme = readFileSync('README.md', 'utf8');
      const section = readme.slice(readme.indexOf('## Five minutes'));
      const script = /```sh\n([\s\S]*?)```/.exec(section)![1]!
        .replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`)
        .replaceAll('keys/dev-admin-token', join(dir, 'keys', 'dev-admin-token'));
      // Not `bash -e`: the last step is meant to be refused.
      const { stdout, stderr } = await exec('bash', ['-c', script], { cwd: process.cwd(), timeout: 60_000 }).catch((err: { stdout: string; stderr: string }) => err);
      const answers = stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { active: boolean; job_id?: string });
      assert.equal(answers.length, 2, stdout + stderr);
      assert.equal(answers[0]!.active, true);
      assert.equal(answers[0]!.job_id, '7-1');
      assert.deepEqual(answers[1], { active: false });
      assert.match(stderr, /invalid_request: this job has been revoked/);
    });

    it('prints a quickstart that works when pasted into bash', async () => {
      const printed = server.output();
      const script = printed
        .split('\n')
        .filter((line) => /^ {2,}\S/.test(line) && !/^\s*#/.test(line))
        .join('\n')
        // Show what the pasted commands printed, one marker per introspection.
        .replace(/--data-urlencode "token=\$TOKEN"/g, '--data-urlencode "token=$TOKEN"; echo " <-introspected"');
      assert.match(script, /export MINTGATE_ADMIN_TOKEN=dev-/);
      const { stdout } = await exec('bash', ['-euo', 'pipefail', '-c', script], { cwd: process.cwd(), timeout: 60_000 });
      const results = stdout
        .split('\n')
        .filter((line) => line.endsWith(' <-introspected'))
        .map((line) => line.replace(/ <-introspected$/, ''));
      assert.equal(results.length, 2, stdout);
      const [live, dead] = results.map((r) => JSON.parse(r));
      assert.equal(live.active, true);
      assert.equal(live.aud, 'inference-gateway');
      assert.equal(live.scope, 'inference:invoke model:llama-3-8b');
      assert.equal(live.job_id, '42-1');
      assert.deepEqual(dead, { active: false });
    });
  });
});
