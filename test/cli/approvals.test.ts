/**
 * `mintgate approvals list|approve|deny`, black-box against a real broker: the table, `--json`
 * (the endpoint's JSON), decisions with the admin secret or an operator's token, and the exit
 * statuses of CONTRACT section 2 (0, 1 refused, 2 usage).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startTestBroker, trustEntry, type TestBroker } from '../support/broker.js';
import { runCli } from '../support/cli.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const asAdmin = { env: { MINTGATE_ADMIN_TOKEN: ADMIN_TOKEN, MINTGATE_TOKEN: '' } };

describe('mintgate approvals', () => {
  let idp: LocalIssuer;
  let broker: TestBroker;
  let operatorToken: string;

  before(async () => {
    idp = await startLocalIssuer();
    broker = await startTestBroker({
      config: (issuer) => ({
        trust: [
          trustEntry(idp.issuer, {}, [
            { name: 'operator', match: { repository: 'acme/ops' }, subject: '"alice@example.com"', grant: { audiences: [issuer], scopes: ['mintgate:admin'] } },
            { name: 'proxy', match: { repository: 'acme/proxy' }, grant: { audiences: [issuer], scopes: ['mintgate:proxy'] } },
          ]),
        ],
      }),
    });
    operatorToken = (await broker.exchange(await idp.github({ repository: 'acme/ops' }), { audience: broker.url })).body.access_token;
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
  });

  const open = async (extra: Record<string, unknown> = {}): Promise<string> => {
    const res = await broker.postJson(
      '/admin/approvals',
      { jti: 'cli-jti', sub: 'acme/models@refs/heads/main', job_id: '7-1', route: 'export', method: 'POST', path: '/v1/models/llama-3-8b/export', request_sha256: 'e'.repeat(64), expires_in: 600, ...extra },
      admin,
    );
    assert.equal(res.status, 201, res.text);
    return res.body.id;
  };
  const cli = (args: string[], opts = asAdmin) => runCli(['approvals', ...args, '--broker', broker.url], opts);

  it('list prints a table, newest first; --json prints exactly what the endpoint answers', async () => {
    const first = await open();
    const second = await open({ model: 'llama-3-8b', path: '/v1/models/llama-3-8b/export?fast=1' });
    const table = await cli(['list']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID\s+STATUS\s+ROUTE\s+REQUEST\s+MODEL\s+SUBJECT\s+JOB\s+EXPIRES\s+DECIDED BY$/);
    const rowOf = (id: string) => lines.findIndex((l) => l.startsWith(id));
    assert.ok(rowOf(second) > 0 && rowOf(second) < rowOf(first), 'newest first');
    assert.match(lines[rowOf(second)]!, /\bpending\s+export\s+POST \/v1\/models\/llama-3-8b\/export\?fast=1\s+llama-3-8b\s+acme\/models@refs\/heads\/main\s+7-1\s+\S+Z\s+-$/);
    assert.match(lines[rowOf(first)]!, /\/export\s+-\s+acme/, 'no model: -');

    const json = await cli(['list', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), (await broker.get('/admin/approvals', admin)).body);
  });

  it('approve and deny print the decision; the list shows it; --status filters', async () => {
    const toApprove = await open({ jti: 'approve-me' });
    const toDeny = await open({ jti: 'deny-me' });
    const approved = await cli(['approve', toApprove]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal(approved.stdout, `approved ${toApprove}: POST /v1/models/llama-3-8b/export (route export, acme/models@refs/heads/main, job 7-1)\n`);
    const denied = await cli(['deny', toDeny, '--json']);
    assert.equal(denied.code, 0, denied.stderr);
    assert.equal(JSON.parse(denied.stdout).status, 'denied');
    assert.equal(JSON.parse(denied.stdout).decided_by, 'admin');

    const onlyApproved = JSON.parse((await cli(['list', '--status', 'approved', '--json'])).stdout).approvals;
    assert.deepEqual(onlyApproved.map((a: { id: string }) => a.id), [toApprove]);
    const table = (await cli(['list', '--status', 'denied'])).stdout;
    assert.match(table, new RegExp(`^${toDeny}\\s+denied\\s.*\\sadmin$`, 'm'));
    assert.doesNotMatch(table, new RegExp(toApprove));
  });

  it('decides with MINTGATE_TOKEN too: decided_by is the token\'s subject', async () => {
    const id = await open();
    const res = await cli(['approve', id, '--json'], { env: { MINTGATE_TOKEN: operatorToken, MINTGATE_ADMIN_TOKEN: '' } });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).decided_by, 'alice@example.com');
  });

  it('exits 1 when the broker refuses: already decided (409), unknown (404), no or a bad credential', async () => {
    const id = await open();
    assert.equal((await cli(['deny', id])).code, 0);
    const again = await cli(['approve', id]);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `mintgate: the broker refused (409): conflict: approval ${id} is already denied\n`);
    const unknown = await cli(['approve', 'apr_AAAAAAAAAAAAAAAAAAAAAA']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'mintgate: the broker refused (404): not_found: no such approval\n');
    const slashes = await cli(['deny', '../../keys/rotate']);
    assert.equal(slashes.code, 1, 'the id is one path segment, whatever it holds');
    assert.match(slashes.stderr, /\(404\): not_found/);
    const none = await cli(['list'], { env: { MINTGATE_ADMIN_TOKEN: '', MINTGATE_TOKEN: '' } });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /set MINTGATE_TOKEN/);
    const wrong = await cli(['list'], { env: { MINTGATE_ADMIN_TOKEN: 'wrong', MINTGATE_TOKEN: '' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /\(401\): invalid_token/);
  });

  it('exits 2 on usage errors', async () => {
    assert.equal((await cli(['list', '--status', 'maybe'])).code, 2);
    assert.equal((await cli(['approve'])).code, 2, 'no id');
    assert.equal((await runCli(['approvals', 'list'], asAdmin)).code, 2, 'no --broker');
    assert.equal((await cli(['pause', 'apr_x'])).code, 2, 'no such subcommand');
  });
});
