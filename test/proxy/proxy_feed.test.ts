/**
 * The proxy's revocation feed across a broken connection: the broker ends the stream, a
 * revocation is made while the proxy is away, and the proxy, reconnecting with Last-Event-ID,
 * receives it (nothing lost), so the token is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN } from '../support/broker.js';
import { startProxyRig, waitFor, type ProxyRig } from '../support/proxy_rig.js';

describe('proxy: revocation feed resume', () => {
  let rig: ProxyRig;
  before(async () => {
    rig = await startProxyRig();
  });
  after(() => rig?.close());

  it('a revocation made while the feed was down arrives on reconnect', async () => {
    // An event on the feed first, so the proxy has a position to resume from.
    const earlier = JSON.parse(Buffer.from((await rig.token()).split('.')[1]!, 'base64url').toString()) as { jti: string };
    await rig.broker.postJson('/admin/revocations', { jti: earlier.jti }, { authorization: `Bearer ${ADMIN_TOKEN}` });
    await waitFor(() => rig.proxy.revocations.size > 0, 2_000, 'the first revocation at the proxy');
    const resumesBefore = rig.proxy.feed.resumes;
    const token = await rig.token();
    assert.equal((await rig.call('GET', '/v1/models', { token })).status, 200);
    // The broker ends every stream (as when it shuts down); its store keeps taking revocations.
    rig.broker.running.context.feed.stop();
    await waitFor(() => !rig.proxy.feed.connected, 2_000, 'the proxy to notice');
    const jti = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
    assert.equal((await rig.broker.postJson('/admin/revocations', { jti }, { authorization: `Bearer ${ADMIN_TOKEN}` })).status, 201);
    await waitFor(() => rig.proxy.feed.connected, 5_000, 'the proxy to reconnect');
    await waitFor(async () => (await rig.call('GET', '/v1/models', { token })).status === 401, 2_000, 'the revocation applied');
    assert.equal(rig.proxy.feed.resumes, resumesBefore + 1, 'the reconnection resumed with Last-Event-ID');
  });
});
