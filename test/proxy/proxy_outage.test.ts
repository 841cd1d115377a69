/**
 * The broker goes away and comes back. Meanwhile the proxy keeps verifying with the keys and
 * revocations it has, until the feed has been silent for `feed.max_staleness`; then it fails
 * closed (503 with Retry-After). Every call made meanwhile is spooled, and reaches the broker's
 * audit log once it is back, exactly once.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { startProxyRig, waitFor, type ProxyRig } from '../support/proxy_rig.js';

describe('proxy: broker outage', () => {
  let rig: ProxyRig;

  before(async () => {
    rig = await startProxyRig({ proxyConfig: (raw) => ({ ...raw, feed: { max_staleness: '2s' } }) });
  });
  after(() => rig?.close());

  it('keeps serving known keys, fails closed after max_staleness, recovers, and ships every record once', async () => {
    const token = await rig.token();
    const unused = await rig.token(); // signed by a known key, first seen during the outage
    assert.equal((await rig.call('GET', '/v1/models', { token })).status, 200);
    await waitFor(() => rig.proxy.spool.backlog === 0, 5_000, 'the first record shipped');

    await rig.stopBroker();
    const during: string[] = [];
    const track = (): string => rig.records.at(-1)!.id;
    assert.equal((await rig.call('GET', '/v1/models', { token })).status, 200);
    during.push(track());
    assert.equal((await rig.call('GET', '/v1/models', { token: unused })).status, 200);
    during.push(track());
    assert.equal((await rig.call('GET', '/v1/unknown', { token })).status, 403);
    during.push(track());

    await waitFor(async () => (await rig.call('GET', '/v1/models', { token })).status === 503, 6_000, 'fail closed');
    during.push(track());
    const refused = await rig.call('GET', '/v1/models', { token });
    during.push(track());
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error, 'temporarily_unavailable');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal((await rig.call('GET', '/_mintgate/readyz')).status, 503);
    assert.ok(rig.proxy.spool.backlog >= during.length, 'records wait in the spool');
    assert.ok((await readdir(rig.spoolDir)).some((f) => f.endsWith('.jsonl')));

    await rig.startBroker();
    await waitFor(() => rig.proxy.ready(), 10_000, 'the proxy ready again');
    assert.equal((await rig.call('GET', '/v1/models', { token })).status, 200);
    await waitFor(() => rig.proxy.spool.backlog === 0, 15_000, 'the spool shipped');
    const shipped = rig.broker.audit.events.filter((e) => e.type === 'proxy.call').map((e) => (e as { id?: string }).id);
    for (const id of during) assert.equal(shipped.filter((s) => s === id).length, 1, `record ${id} shipped exactly once`);
  });
});
