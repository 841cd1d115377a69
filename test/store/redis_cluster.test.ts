/**
 * RedisStore on a private three-master Redis Cluster (never the shared Redis on 6379): the
 * shared Store contract, the hash tags that keep each script within one slot, the blocking feed
 * read on a Cluster connection of its own, and the encrypted keystore. Without redis-server and
 * redis-cli on PATH this is skipped, loudly; with MINTGATE_REQUIRE_REDIS=1 it fails instead.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';

import { createRedisClient, KeystoreVersionConflict, RedisKeystoreRepository, RedisStore, waitUntilReady, type RedisClient } from '../../src/store/redis.js';
import type { Revocation } from '../../src/store/store.js';
import { startCluster, topologyTestOptions, type RedisClusterHandle } from '../support/redis_topologies.js';
import { assertSecondBrokerPicksUpRotation, docWith, kek } from './keystore_fixtures.js';
import { storeSuite } from './store_suite.js';

const quiet = (): void => {};
let prefixes = 0;
/** A key prefix no other case uses, so cases share one cluster without flushing it. */
const uniquePrefix = (): string => `c${process.pid}-${++prefixes}`;

async function connect(url: string): Promise<RedisClient> {
  const client = createRedisClient(url, { onError: quiet });
  await waitUntilReady(client);
  assert.ok(client instanceof Cluster, 'a redis-cluster:// URL makes a Cluster client');
  return client;
}

describe('RedisStore on Redis Cluster (3 masters)', topologyTestOptions(), () => {
  let cluster: RedisClusterHandle;
  /** An admin connection to the cluster, to look at keys and slots. */
  let raw: Cluster;

  before(async () => {
    const started = await startCluster({ masters: 3 });
    // topologyTestOptions() skipped this suite when the binaries are missing, unless
    // MINTGATE_REQUIRE_REDIS=1, in which case startCluster threw: null cannot reach this point.
    if (!started) throw new Error('redis-server or redis-cli is not available');
    cluster = started;
    raw = (await connect(cluster.url)) as Cluster;
  });
  after(async () => {
    raw?.disconnect();
    await cluster?.stop();
  });

  // Redis expires keys by its own clock, so the suite's clock moves by really waiting.
  storeSuite('redis cluster', async () => {
    const store = new RedisStore(await connect(cluster.url), uniquePrefix());
    return { store, advance: (ms) => sleep(ms), cleanup: () => store.close() };
  });

  describe('on Cluster', () => {
    /** The port of the master that serves `key`'s slot. */
    const ownerOf = async (key: string): Promise<number> => {
      const slot = (await raw.cluster('KEYSLOT', key)) as number;
      const range = (await raw.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to);
      assert.ok(range?.[2], `slot ${slot} is served`);
      return range[2][1];
    };

    it('keeps every key of each script in one slot, with the groups spread over the masters', async () => {
      // Prefixes whose {P:issued} and {P:rev} groups live on different masters, so a script that
      // reached across groups would fail with CROSSSLOT rather than pass by luck.
      let prefix = uniquePrefix();
      while ((await ownerOf(`{${prefix}:issued}`)) === (await ownerOf(`{${prefix}:rev}`))) prefix = uniquePrefix();
      const store = new RedisStore(await connect(cluster.url), prefix);
      try {
        const now = Date.now();
        const token = { jti: 'j{1}', sub: 'repo:{acme}', job_id: 'job}{', client_id: 'e/r', aud: 'a', scope: 's', iat: 1, exp: 2, src: { iss: 'i', sub: 's' } };
        await store.recordIssued(token, 60);
        const revoked: Revocation[] = [];
        for (const kind of ['jti', 'job', 'sub'] as const) revoked.push(await store.revoke({ kind, value: `{${kind}}`, reason: '', at: now, until: now + 60_000 }));
        assert.deepEqual(await store.getIssued('j{1}'), token);
        assert.deepEqual(
          await store.findRevocation({ jti: 'x', job_id: '{job}', sub: 'y', iat: 1, ancestors: ['p', '{jti}'] }),
          revoked[0],
          'one script reads the job, subject and every ancestor revocation',
        );
        assert.deepEqual(await store.feedAfter(null, 10), revoked.map((r) => ({ type: 'revocation', id: r.id, revocation: r })));
        await store.createApproval({
          id: 'apr_{a}', jti: 'j', sub: 's', job_id: 'j', route: 'r', method: 'POST', path: '/', request_sha256: '0'.repeat(64), created_at: now, expires_at: now + 60_000,
        });
        assert.equal((await store.decideApproval('apr_{a}', 'approved', 'alice', now)).outcome, 'decided', 'the decision and its feed event, in one script');
        assert.equal((await store.listApprovals(now)).length, 1);

        const issuedKeys = [`{${prefix}:issued}:jti:j{1}`, `{${prefix}:issued}:job:job}{`, `{${prefix}:issued}:sub:repo:{acme}`];
        const revKeys = [
          `{${prefix}:rev}:feed`, `{${prefix}:rev}:jti:{jti}`, `{${prefix}:rev}:job:{job}`, `{${prefix}:rev}:sub:{sub}`,
          `{${prefix}:rev}:approval:apr_{a}`, `{${prefix}:rev}:approvals`,
        ];
        for (const group of [issuedKeys, revKeys]) {
          const slots = new Set(await Promise.all(group.map((k) => raw.cluster('KEYSLOT', k))));
          assert.equal(slots.size, 1, `one slot for ${group.join(', ')}`);
          for (const key of group) assert.equal(await raw.exists(key), 1, `${key} exists`);
        }
      } finally {
        await store.close();
      }
    });

    it('spreads assertion claims over the masters (one key each, no hash tag of ours)', async () => {
      const prefix = uniquePrefix();
      const store = new RedisStore(await connect(cluster.url), prefix);
      try {
        const owners = new Set<number>();
        for (let i = 0; i < 30; i++) {
          assert.equal(await store.claimAssertion(`assertion-${i}`, 60), true);
          owners.add(await ownerOf(`${prefix}:claim:assertion-${i}`));
        }
        assert.equal(owners.size, 3, 'claims land on every master');
        for (let i = 0; i < 30; i++) assert.equal(await store.claimAssertion(`assertion-${i}`, 60), false);
      } finally {
        await store.close();
      }
    });

    it('waitForFeed: a blocking XREAD on a Cluster connection of its own wakes up for another broker\'s revocation', async () => {
      const prefix = uniquePrefix();
      const follower = new RedisStore(await connect(cluster.url), prefix);
      const other = new RedisStore(await connect(cluster.url), prefix);
      try {
        const first = await other.revoke({ kind: 'jti', value: 'before', reason: '', at: Date.now(), until: Date.now() + 60_000 });
        // Three rounds: the blocking connection is made once and reused; meanwhile the main
        // connection stays free (a ping during the block answers at once).
        let cursor = first.id;
        for (let round = 0; round < 3; round++) {
          const waiting = follower.waitForFeed(cursor, 10, 1_400);
          await sleep(150);
          const pingStarted = Date.now();
          await follower.ping();
          assert.ok(Date.now() - pingStarted < 200, 'the main connection is not blocked');
          const made = await other.revoke({ kind: 'job', value: `job-${round}`, reason: 'r', at: Date.now(), until: Date.now() + 60_000 });
          const woke = Date.now();
          assert.deepEqual(await waiting, [{ type: 'revocation', id: made.id, revocation: made }]);
          assert.ok(Date.now() - woke < 1_000, 'woken by the event, not by the timeout');
          cursor = made.id;
        }
        const started = Date.now();
        assert.deepEqual(await follower.waitForFeed(cursor, 10, 400), []);
        assert.ok(Date.now() - started >= 350, 'an empty wait lasts about waitMs');
        assert.deepEqual(await follower.waitForFeed(null, 10, 400), await other.feedAfter(null, 10));
      } finally {
        await follower.close();
        await other.close();
      }
    });
  });

  describe('RedisKeystoreRepository on Cluster', () => {
    let client: RedisClient;
    before(async () => {
      client = await connect(cluster.url);
    });
    after(async () => {
      client?.disconnect();
    });

    it('round-trips the keystore, encrypted; compare-and-set refuses a stale version', async () => {
      const prefix = uniquePrefix();
      const key = kek();
      const repo = new RedisKeystoreRepository(client, key, prefix);
      assert.equal(await repo.load(), null);
      assert.equal(await repo.loadVersion(), null);
      const doc = await docWith(1, 2);
      await repo.save(doc);
      assert.deepEqual(await repo.load(), doc);
      assert.equal(await repo.loadVersion(), 1);
      const stored = await (client as Cluster).hgetall(`${prefix}:keystore`);
      assert.deepEqual(Object.keys(stored).sort(), ['format', 'jwe', 'version']);
      assert.ok(!stored.jwe!.includes(String(doc.keys[0]!.jwk.d)), 'no private key in Redis');

      // Another broker, on another Cluster connection, sees it and loses a race to overwrite it.
      const elsewhere = await connect(cluster.url);
      try {
        const other = new RedisKeystoreRepository(elsewhere, key, prefix);
        assert.deepEqual(await other.load(), doc);
        const newer = await docWith(2, 3);
        await repo.save(newer);
        await assert.rejects(other.save(await docWith(2)), (err: Error) => err instanceof KeystoreVersionConflict && err.found === 2);
        assert.deepEqual(await other.load(), newer);
      } finally {
        elsewhere.disconnect();
      }
    });

    it('lets a second broker pick up a rotation from the version bump', async () => {
      const prefix = uniquePrefix();
      const key = kek();
      await assertSecondBrokerPicksUpRotation(() => new RedisKeystoreRepository(client, key, prefix));
    });
  });
});

describe('RedisStore on a Cluster that loses a master', topologyTestOptions(), () => {
  let cluster: RedisClusterHandle;
  before(async () => {
    // A short node timeout, so the cluster declares itself failed within the test's patience.
    const started = await startCluster({ masters: 3, args: ['--cluster-node-timeout', '1000'] });
    if (!started) throw new Error('redis-server or redis-cli is not available');
    cluster = started;
  });
  after(async () => {
    await cluster?.stop();
  });

  it('stops answering ping (so /readyz fails) once some slots have no master', async () => {
    const store = new RedisStore(await connect(cluster.url), uniquePrefix());
    try {
      await store.ping();
      cluster.nodes.find((n) => n.role === 'master')!.kill('SIGKILL');
      const deadline = Date.now() + 15_000;
      let failed = false;
      while (!failed && Date.now() < deadline) {
        failed = await store.ping().then(
          () => false,
          () => true,
        );
        if (!failed) await sleep(200);
      }
      assert.ok(failed, 'ping rejects once the cluster is down');
    } finally {
      await store.close();
    }
  });
});
