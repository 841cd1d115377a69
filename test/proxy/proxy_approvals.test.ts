/**
 * Approvals end to end (CONTRACT sections 4 and 7): a call on a route with `approval` is held
 * while the broker shows it to approvers; their decision reaches the proxy over the revocation
 * stream. Approved: forwarded. Denied or not in time: 403 `approval_required` with the id.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, type HttpAnswer } from '../support/broker.js';
import { startProxyRig, waitFor, type ProxyRig } from '../support/proxy_rig.js';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('proxy: approvals', () => {
  let rig: ProxyRig;
  let token: string;
  let jti: string;

  before(async () => {
    rig = await startProxyRig();
    token = await rig.token('inference:invoke model:export');
    jti = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
  });
  after(() => rig?.close());

  /** The pending approval for this call, once the proxy has opened it. */
  async function pendingApproval(path: string): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    await waitFor(
      async () => {
        const list = await rig.broker.get('/admin/approvals?status=pending', admin);
        found = (list.body.approvals as Array<Record<string, unknown>>).find((a) => a.jti === jti && a.path === path);
        return found !== undefined;
      },
      2_000,
      'the approval to be opened',
    );
    return found!;
  }

  const exportCall = (model: string, body: unknown = { format: 'safetensors' }): Promise<HttpAnswer> =>
    rig.call('POST', `/v1/models/${model}/export`, { token, body });

  it('approved while held: forwarded, and the approval names the call', async () => {
    const seen = rig.upstream.seen.length;
    const held = exportCall('llama');
    const approval = await pendingApproval('/v1/models/llama/export');
    assert.equal(approval.route, 'export');
    assert.equal(approval.method, 'POST');
    assert.match(String(approval.request_sha256), /^[0-9a-f]{64}$/);
    assert.equal(rig.upstream.seen.length, seen, 'nothing forwarded while held');
    const decided = await rig.broker.postJson(`/admin/approvals/${approval.id}/approve`, {}, admin);
    assert.equal(decided.status, 200, decided.text);
    const res = await held;
    assert.equal(res.status, 200, res.text);
    assert.equal(rig.upstream.seen.length, seen + 1);
    assert.equal(rig.records.at(-1)!.details.approval_id, approval.id);
  });

  it('denied: 403 approval_required with the approval id, never forwarded', async () => {
    const seen = rig.upstream.seen.length;
    const held = exportCall('mistral');
    const approval = await pendingApproval('/v1/models/mistral/export');
    assert.equal((await rig.broker.postJson(`/admin/approvals/${approval.id}/deny`, {}, admin)).status, 200);
    const res = await held;
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'approval_required');
    assert.equal(res.body.approval_id, approval.id);
    assert.equal(rig.upstream.seen.length, seen);
    // Asking again gets the same answer, not a new approval.
    const again = await exportCall('mistral');
    assert.equal(again.status, 403);
    assert.equal(again.body.approval_id, approval.id);
  });

  it('not decided in time: 403 approval_required; approved later, the same call passes once', async () => {
    const started = Date.now();
    const res = await exportCall('phi');
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'approval_required');
    assert.ok(Date.now() - started >= 2_900, 'held for the route wait (3s)');
    const id = res.body.approval_id as string;
    assert.equal((await rig.broker.postJson(`/admin/approvals/${id}/approve`, {}, admin)).status, 200);
    await waitFor(async () => (await exportCall('phi')).status === 200, 2_000, 'the retried call to pass');
    // One approval, one call: the next identical call is held again (a new approval).
    const next = exportCall('phi');
    const reopened = await pendingApproval('/v1/models/phi/export');
    assert.notEqual(reopened.id, id);
    await rig.broker.postJson(`/admin/approvals/${String(reopened.id)}/deny`, {}, admin);
    assert.equal((await next).status, 403);
  });

  it('a decided approval cannot be decided again (409), an unknown one is 404', async () => {
    const list = await rig.broker.get('/admin/approvals', admin);
    const decided = (list.body.approvals as Array<{ id: string; status: string }>).find((a) => a.status !== 'pending')!;
    assert.equal((await rig.broker.postJson(`/admin/approvals/${decided.id}/approve`, {}, admin)).status, 409);
    assert.equal((await rig.broker.postJson('/admin/approvals/apr_unknown0000000000000000/approve', {}, admin)).status, 404);
  });
});
