/**
 * Redis killed under load: only 503s (with Retry-After), never another 5xx, never a token
 * without its record; /readyz fails meanwhile; Redis back, exchanges succeed without a restart.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startTestBroker, trustEntry, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { redisTestOptions, startRedis, type RedisProcess } from '../support/redis.js';

describe('Redis outage under load', redisTestOptions(), () => {
  let redis: RedisProcess;
  let idp: LocalIssuer;
  let broker: TestBroker;

  before(async () => {
    // Every acknowledged write is on disk, so the records of tokens minted before the kill survive it.
    redis = (await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] }))!;
    idp = await startLocalIssuer();
    broker = await startTestBroker({
      config: { limits: { exchanges_per_subject_per_minute: 0, exchanges_per_address_per_minute: 0 }, trust: [trustEntry(idp.issuer)] },
      env: { MINTGATE_KEK: randomBytes(32).toString('base64'), REDIS_URL: redis.url },
    });
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
    await redis?.stop();
  });

  it('fails closed with 503 only, and recovers by itself', async () => {
    const statuses = new Map<number, number>();
    const minted: string[] = [];
    let missingRetryAfter = 0;
    let stop = false;
    let readyzDuringOutage: number | undefined;
    const worker = async () => {
      while (!stop) {
        const res = await broker.exchange(await idp.github());
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200) minted.push(res.body.access_token);
        if (res.status === 503 && !res.headers['retry-after']) missingRetryAfter++;
      }
    };
    const workers = Array.from({ length: 4 }, worker);

    await new Promise((r) => setTimeout(r, 700));
    const mintedBeforeKill = minted.length;
    redis.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1_000));
    readyzDuringOutage = (await broker.get('/readyz')).status;
    const during = new Map(statuses);
    await redis.restart({ keepData: true });
    // Recovery: within a few seconds, exchanges succeed again, with no broker restart.
    const recoveredBy = Date.now() + 8_000;
    const okBefore = statuses.get(200) ?? 0;
    while ((statuses.get(200) ?? 0) === okBefore && Date.now() < recoveredBy) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(workers);

    assert.ok(mintedBeforeKill > 0, 'tokens were minted before the kill');
    assert.ok((during.get(503) ?? 0) > 0, `the outage was seen as 503s: ${JSON.stringify([...during])}`);
    assert.ok((statuses.get(200) ?? 0) > okBefore, 'exchanges succeed again after Redis returns');
    assert.deepEqual([...statuses.keys()].filter((s) => s !== 200 && s !== 503), [], `only 200 and 503: ${JSON.stringify([...statuses])}`);
    assert.equal(missingRetryAfter, 0, 'every 503 carries Retry-After');
    assert.equal(readyzDuringOutage, 503, '/readyz fails while Redis is down');
    assert.equal((await broker.get('/readyz')).status, 200, '/readyz recovers');

    // Never a token without its record: every token handed out introspects active.
    for (const token of minted) {
      const res = await broker.postForm('/oauth2/introspect', { token }, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal(res.body.active, true, 'a minted token has its record');
    }
  });
});
