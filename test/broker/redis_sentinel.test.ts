/**
 * A broker on `redis-sentinel://` under load while its master dies (SIGKILL) or hangs (SIGSTOP:
 * the process is frozen, its connections stay open, as with a cut-off host): the sentinels
 * promote the replica and exchanges resume with no broker restart. Meanwhile the only answers
 * other than 200 are 503 with Retry-After (never a 500), and every token handed out, before or
 * after the failover, still introspects active: its record reached the replica in time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, startTestBroker, trustEntry, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { startSentinelSet, topologyTestOptions, type SentinelSetHandle } from '../support/redis_topologies.js';

/** Concurrent exchange loops. */
const WORKERS = 6;

function failoverUnderLoad(title: string, signal: 'SIGKILL' | 'SIGSTOP'): void {
  describe(title, () => {
    let redis: SentinelSetHandle;
    let idp: LocalIssuer;
    let broker: TestBroker;

    before(async () => {
      // Every acknowledged write is on disk as well as sent to the replica (which is in sync
      // before the broker starts), so what the old master acknowledged is what the replica has.
      const started = await startSentinelSet({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
      // topologyTestOptions() skipped this file when the binaries are missing, unless
      // MINTGATE_REQUIRE_REDIS=1, in which case startSentinelSet threw: null cannot get here.
      if (!started) throw new Error('redis-server or redis-cli is not available');
      redis = started;
      idp = await startLocalIssuer();
      broker = await startTestBroker({
        config: { limits: { exchanges_per_subject_per_minute: 100000 }, trust: [trustEntry(idp.issuer)] },
        env: { MINTGATE_KEK: randomBytes(32).toString('base64'), REDIS_URL: redis.url },
      });
    });
    after(async () => {
      await broker?.close();
      await idp?.close();
      await redis?.stop();
    });

    it('promotes the replica; exchanges resume without a restart, with only 503 + Retry-After meanwhile and no lost record', async (t) => {
      interface Minted {
        token: string;
        /** Epoch ms when the 200 arrived. */
        at: number;
      }
      const statuses = new Map<number, number>();
      const minted: Minted[] = [];
      const unexpected: string[] = [];
      let missingRetryAfter = 0;
      let stop = false;
      const worker = async (): Promise<void> => {
        while (!stop) {
          const res = await broker.exchange(await idp.github());
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 200) minted.push({ token: res.body.access_token, at: Date.now() });
          else if (res.status === 503) {
            if (!res.headers['retry-after']) missingRetryAfter++;
            // A client backs off on Retry-After; a short pause keeps the loop from spinning.
            await sleep(20);
          } else if (unexpected.length < 5) unexpected.push(`${res.status} ${res.text.slice(0, 300)}`);
        }
      };
      const workers = Array.from({ length: WORKERS }, worker);

      await sleep(800);
      const mintedBeforeKill = minted.length;
      const killedAt = Date.now();
      const old = await redis.killMaster(signal);
      const promoted = await redis.waitForFailover(old.port, 20_000);
      const failedOverAt = Date.now();
      assert.equal(promoted, redis.replica.port, 'the replica is the master now');

      // Recovery: exchanges succeed again, on the same broker, within a few seconds.
      const deadline = Date.now() + 10_000;
      while (!minted.some((m) => m.at > failedOverAt) && Date.now() < deadline) await sleep(50);
      const recoveredAt = minted.find((m) => m.at > failedOverAt)?.at;
      await sleep(500);
      stop = true;
      await Promise.all(workers);

      const afterFailover = minted.filter((m) => m.at > failedOverAt).length;
      const summary =
        `statuses ${JSON.stringify([...statuses])}; ${mintedBeforeKill} minted before the ${signal}, ${afterFailover} after the failover; ` +
        `failover ${failedOverAt - killedAt} ms after the ${signal}, first 200 ${recoveredAt === undefined ? 'never' : `${recoveredAt - failedOverAt} ms`} after that`;
      t.diagnostic(summary);
      assert.ok(mintedBeforeKill > 0, `tokens were minted before the ${signal}: ${summary}`);
      assert.ok(afterFailover > 0, `exchanges succeed again after the failover, no restart: ${summary}`);
      assert.deepEqual(unexpected, [], `only 200 and 503 answers: ${summary}`);
      assert.deepEqual([...statuses.keys()].filter((s) => s !== 200 && s !== 503), [], summary);
      assert.equal(missingRetryAfter, 0, 'every 503 carries Retry-After');
      assert.equal((await broker.get('/readyz')).status, 200, '/readyz is fine on the new master');

      // Never a token without its record, across the failover: each 200 introspects active.
      const lost: Minted[] = [];
      for (let i = 0; i < minted.length; i += 16) {
        await Promise.all(
          minted.slice(i, i + 16).map(async (m) => {
            const res = await broker.postForm('/oauth2/introspect', { token: m.token }, { authorization: `Bearer ${ADMIN_TOKEN}` });
            assert.equal(res.status, 200, `introspection answers: ${res.text}`);
            if (res.body.active !== true) lost.push(m);
          }),
        );
      }
      assert.deepEqual(
        lost.map((m) => `minted ${m.at - killedAt} ms after the ${signal}`),
        [],
        `records acknowledged by the old master but missing on the promoted replica (${lost.length} of ${minted.length}); ${summary}`,
      );
    });
  });
}

describe('Redis Sentinel failover under load', topologyTestOptions(), () => {
  failoverUnderLoad('the master crashes (SIGKILL)', 'SIGKILL');
  // Its connections stay open, so only the sentinels' +switch-master can tell the client to move.
  failoverUnderLoad('the master hangs (SIGSTOP)', 'SIGSTOP');
});
