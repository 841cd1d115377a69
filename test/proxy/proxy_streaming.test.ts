/**
 * Request bodies that no rule needs to read stream straight through to the upstream (no model
 * scope, no body block rule, no approval): every byte arrives, and the call record still keeps
 * its first `record.max_bytes`, masked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startProxyRig, type ProxyRig } from '../support/proxy_rig.js';

describe('proxy: streamed request bodies', () => {
  let rig: ProxyRig;
  before(async () => {
    rig = await startProxyRig({
      proxyConfig: (raw) => ({
        ...raw,
        record: { ...(raw.record as object), max_bytes: 1024 },
        block_requests: (raw.block_requests as Array<{ where: string }>).filter((r) => r.where !== 'body'),
      }),
    });
  });
  after(() => rig?.close());

  it('forwards a 2 MiB body whole, and records its first max_bytes masked', async () => {
    const token = await rig.token();
    const body = `mail jane.doe@example.com ${'x'.repeat(2 * 1024 * 1024)}`;
    const res = await rig.call('POST', '/v1/echo/upload', { token, body, headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(rig.upstream.seen.at(-1)!.body, body, 'every byte reached the upstream');
    const record = rig.records.at(-1)!;
    assert.equal(record.details.bytes_in, Buffer.byteLength(body));
    const kept = record.details.request_body as { text: string; truncated: boolean };
    assert.equal(kept.truncated, true);
    assert.match(kept.text, /^mail \[MASKED:email\] x+$/);
    assert.ok(kept.text.length <= 1024);
  });
});
