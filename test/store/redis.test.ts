/**
 * RedisStore on a private redis-server (never the shared one on 6379): the shared Store
 * contract, then what only Redis has (key layout, scripts, outages), the store URL parser and
 * the encrypted keystore. Without redis-server on PATH the Redis parts are skipped, loudly;
 * with MINTGATE_REQUIRE_REDIS=1 they fail instead.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';

import {
  createRedisClient,
  KeystoreUnreadable,
  KeystoreVersionConflict,
  parseRedisUrl,
  redactRedisUrl,
  RedisKeystoreRepository,
  RedisStore,
  waitUntilReady,
  type RedisClient,
  type RedisTarget,
} from '../../src/store/redis.js';
import { StoreUnavailable } from '../../src/store/store.js';
import { redisTestOptions, startRedis, type RedisProcess } from '../support/redis.js';
import { assertSecondBrokerPicksUpRotation, docWith, kek } from './keystore_fixtures.js';
import { storeSuite } from './store_suite.js';

const quiet = (): void => {};
let prefixes = 0;
/** A key prefix no other case uses, so cases share one server without flushing it. */
const uniquePrefix = (): string => `t${process.pid}-${++prefixes}`;

async function connect(url: string): Promise<RedisClient> {
  const client = createRedisClient(url, { onError: quiet });
  await waitUntilReady(client);
  return client;
}

async function start(args: string[] = []): Promise<RedisProcess> {
  const server = await startRedis({ args });
  // redisTestOptions() skips this file's Redis parts when redis-server is missing, unless
  // MINTGATE_REQUIRE_REDIS=1, in which case startRedis throws: null cannot reach this point.
  if (!server) throw new Error('redis-server is not available');
  return server;
}

const redisOptions = redisTestOptions();
if (redisOptions.skip) process.stderr.write(`\n!!! WARNING: ${import.meta.url}: the Redis tests are SKIPPED: ${redisOptions.skip}\n\n`);

describe('RedisStore', redisOptions, () => {
  let server: RedisProcess;
  before(async () => {
    server = await start();
  });
  after(async () => {
    await server?.stop();
  });

  // Redis expires keys by its own clock, so the suite's clock moves by really waiting.
  storeSuite('redis', async () => {
    const store = new RedisStore(await connect(server.url), uniquePrefix());
    return { store, advance: (ms) => sleep(ms), cleanup: () => store.close() };
  });

  describe('on Redis', () => {
    let raw: Redis;
    before(async () => {
      raw = new Redis(server.url, { lazyConnect: true });
      await raw.connect();
    });
    after(async () => {
      await raw?.quit();
    });

    const hashTag = (key: string): string | null => /\{([^}]+)\}/.exec(key)?.[1] ?? null;

    it('keeps every key a script touches under one hash tag, and claims outside them', async () => {
      const prefix = uniquePrefix();
      const store = new RedisStore(await connect(server.url), prefix);
      try {
        const now = Date.now();
        await store.claimAssertion('{sneaky}', 60);
        await store.recordIssued(
          { jti: 'j{1}', sub: 'repo:{acme}', job_id: 'job}{', client_id: 'e/r', aud: 'a', scope: 's', iat: 1, exp: 2, src: { iss: 'i', sub: 's' } },
          60,
        );
        for (const kind of ['jti', 'job', 'sub'] as const) await store.revoke({ kind, value: `{${kind}}`, reason: '', at: now, until: now + 60_000 });
        await store.createApproval({
          id: 'apr_{x}', jti: 'j', sub: 's', job_id: 'j', route: 'r', method: 'POST', path: '/', request_sha256: '0'.repeat(64), created_at: now, expires_at: now + 60_000,
        });
        await store.decideApproval('apr_{x}', 'approved', 'alice', now);
        await store.claimAuditEvent('{evt}', 60);
        const keys = (await raw.keys(`*${prefix}*`)).sort();
        assert.deepEqual(
          keys,
          [
            `${prefix}:claim:{sneaky}`,
            `${prefix}:audit-seen:{evt}`,
            `{${prefix}:rev}:approval:apr_{x}`,
            `{${prefix}:rev}:approvals`,
            `{${prefix}:issued}:jti:j{1}`,
            `{${prefix}:issued}:job:job}{`,
            `{${prefix}:issued}:sub:repo:{acme}`,
            `{${prefix}:rev}:feed`,
            `{${prefix}:rev}:job:{job}`,
            `{${prefix}:rev}:jti:{jti}`,
            `{${prefix}:rev}:sub:{sub}`,
          ].sort(),
        );
        for (const key of keys.filter((k) => k.includes(':issued}'))) assert.equal(hashTag(key), `${prefix}:issued`, key);
        for (const key of keys.filter((k) => k.includes(':rev}'))) assert.equal(hashTag(key), `${prefix}:rev`, key);
        assert.throws(() => new RedisStore(raw, 'a{b}'), TypeError);
      } finally {
        await store.close();
      }
    });

    it('writes a revocation and its feed event together, expiring with `until`', async () => {
      const prefix = uniquePrefix();
      const store = new RedisStore(await connect(server.url), prefix);
      try {
        const now = Date.now();
        const r = await store.revoke({ kind: 'job', value: 'job-1', reason: 'done', at: now, until: now + 60_000 });
        assert.deepEqual(await raw.hgetall(`{${prefix}:rev}:job:job-1`), {
          id: r.id, kind: 'job', value: 'job-1', reason: 'done', at: String(now), until: String(now + 60_000),
        });
        // PEXPIREAT at `until` (PEXPIRETIME would say so exactly, but needs Redis 7).
        const ttl = await raw.pttl(`{${prefix}:rev}:job:job-1`);
        assert.ok(ttl > 55_000 && ttl <= 60_000, `ttl ${ttl}`);
        assert.deepEqual(await raw.xrange(`{${prefix}:rev}:feed`, '-', '+'), [
          [r.id, ['kind', 'job', 'value', 'job-1', 'reason', 'done', 'at', String(now), 'until', String(now + 60_000)]],
        ]);
      } finally {
        await store.close();
      }
    });

    it('writes a decision and its feed event together; keeps an approval a day past its expiry', async () => {
      const prefix = uniquePrefix();
      const store = new RedisStore(await connect(server.url), prefix);
      try {
        const now = Date.now();
        const approval = {
          id: 'apr_0123456789abcdefghijkl', jti: 'j1', sub: 'alice', job_id: 'job-1', route: 'export', method: 'POST', path: '/v1/export',
          request_sha256: 'f'.repeat(64), created_at: now, expires_at: now + 60_000,
        };
        await store.createApproval(approval);
        const key = `{${prefix}:rev}:approval:${approval.id}`;
        const ttl = await raw.pttl(key);
        assert.ok(ttl > 60_000 + 86_400_000 - 5_000 && ttl <= 60_000 + 86_400_000, `ttl ${ttl}`);
        assert.deepEqual(await raw.zrange(`{${prefix}:rev}:approvals`, '0', '-1', 'WITHSCORES'), [approval.id, String(now)]);
        assert.equal(await raw.xlen(`{${prefix}:rev}:feed`), 0, 'creating puts nothing on the feed');
        const decided = await store.decideApproval(approval.id, 'denied', 'bob', now + 5);
        assert.equal(decided.outcome, 'decided');
        assert.equal((await raw.hgetall(key)).status, 'denied');
        const [[id, fields]] = (await raw.xrange(`{${prefix}:rev}:feed`, '-', '+')) as [[string, string[]]];
        assert.equal(id, decided.outcome === 'decided' ? decided.event_id : '');
        assert.deepEqual(fields.slice(0, 4), ['type', 'approval', 'until', String(now + 60_000)]);
      } finally {
        await store.close();
      }
    });

    it('indexes issued tokens by job and by subject, until they expire', async () => {
      const prefix = uniquePrefix();
      const store = new RedisStore(await connect(server.url), prefix);
      try {
        const token = { sub: 'alice', job_id: 'job-1', client_id: 'e/r', aud: 'a', scope: 's', iat: 1, exp: 2, src: { iss: 'i', sub: 's' } };
        await store.recordIssued({ ...token, jti: 'j1' }, 60);
        await store.recordIssued({ ...token, jti: 'j2' }, 120);
        assert.deepEqual(await raw.zrange(`{${prefix}:issued}:job:job-1`, '0', '-1'), ['j1', 'j2']);
        assert.deepEqual(await raw.zrange(`{${prefix}:issued}:sub:alice`, '0', '-1'), ['j1', 'j2']);
        const ttl = await raw.pttl(`{${prefix}:issued}:job:job-1`);
        assert.ok(ttl > 119_000 && ttl <= 120_000, `index ttl ${ttl}`);
      } finally {
        await store.close();
      }
    });

    it('trims expired events from the head of the feed stream', async () => {
      const prefix = uniquePrefix();
      const store = new RedisStore(await connect(server.url), prefix);
      try {
        const now = Date.now();
        for (let i = 0; i < 3; i++) await store.revoke({ kind: 'jti', value: `short-${i}`, reason: '', at: now, until: now + 1_000 });
        assert.equal(await raw.xlen(`{${prefix}:rev}:feed`), 3);
        await sleep(1_100);
        const kept = await store.revoke({ kind: 'jti', value: 'long', reason: '', at: Date.now(), until: Date.now() + 60_000 });
        assert.equal(await raw.xlen(`{${prefix}:rev}:feed`), 1);
        assert.deepEqual(await store.feedAfter(null, 10), [{ type: 'revocation', id: kept.id, revocation: kept }]);
      } finally {
        await store.close();
      }
    });

    it('reloads its scripts when the server has forgotten them (NOSCRIPT)', async () => {
      const store = new RedisStore(await connect(server.url), uniquePrefix());
      try {
        const now = Date.now();
        await store.revoke({ kind: 'jti', value: 'a', reason: '', at: now, until: now + 60_000 });
        await raw.script('FLUSH');
        const r = await store.revoke({ kind: 'jti', value: 'b', reason: '', at: now, until: now + 60_000 });
        assert.deepEqual(await store.findRevocation({ jti: 'b', job_id: 'x', sub: 'y', iat: 1 }), r);
      } finally {
        await store.close();
      }
    });
  });

  describe('outages', () => {
    // Its own server, since this case kills and restarts it. The password is set at run time
    // (the start-up PING of test/support/redis.ts does not authenticate), again after restart.
    const PASSWORD = 'p@ss:w/rd';
    let down: RedisProcess;
    const requirePassword = async (): Promise<void> => {
      const admin = new Redis({ port: down.port, host: '127.0.0.1', lazyConnect: true });
      await admin.connect();
      await admin.config('SET', 'requirepass', PASSWORD);
      admin.disconnect();
    };
    before(async () => {
      down = await start();
      await requirePassword();
    });
    after(async () => {
      await down?.stop();
    });

    it('uses the password and db from the URL; fails fast with StoreUnavailable while Redis is down, then recovers by itself', async () => {
      const url = `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${down.port}/2`;
      const store = new RedisStore(await connect(url), uniquePrefix());
      try {
        assert.equal(await store.claimAssertion('before', 60), true);
        const check = new Redis({ port: down.port, host: '127.0.0.1', password: PASSWORD, db: 2, lazyConnect: true });
        await check.connect();
        assert.equal((await check.keys('*:claim:before')).length, 1, 'the claim is in db 2');
        check.disconnect();

        down.kill();
        await sleep(100);
        for (const op of [() => store.ping(), () => store.claimAssertion('during', 60), () => store.feedAfter(null, 10)]) {
          const started = Date.now();
          await assert.rejects(op(), StoreUnavailable);
          assert.ok(Date.now() - started < 2_500, `failed after ${Date.now() - started} ms`);
        }

        await down.restart();
        await requirePassword();
        const deadline = Date.now() + 10_000;
        for (;;) {
          try {
            await store.ping();
            break;
          } catch (err) {
            assert.ok(err instanceof StoreUnavailable, String(err));
            if (Date.now() > deadline) throw new Error('the store did not recover within 10 s');
            await sleep(100);
          }
        }
        // A fresh (empty) server: the claim is gone, and writes work again.
        assert.equal(await store.claimAssertion('before', 60), true);
      } finally {
        await store.close();
      }
    });
  });

  describe('RedisKeystoreRepository', () => {
    let client: RedisClient;
    before(async () => {
      client = await connect(server.url);
    });
    after(async () => {
      client?.disconnect();
    });

    it('round-trips the keystore; an empty Redis has none', async () => {
      const repo = new RedisKeystoreRepository(client, kek(), uniquePrefix());
      assert.equal(await repo.load(), null);
      assert.equal(await repo.loadVersion(), null);
      const doc = await docWith(1, 2);
      await repo.save(doc);
      assert.deepEqual(await repo.load(), doc);
      assert.equal(await repo.loadVersion(), 1);
    });

    it('keeps it encrypted at rest: no private member, no key material, a readable version', async () => {
      const prefix = uniquePrefix();
      const key = kek();
      const repo = new RedisKeystoreRepository(client, key, prefix);
      const doc = await docWith(1);
      await repo.save(doc);
      const stored = await (client as Redis).hgetall(`${prefix}:keystore`);
      assert.deepEqual(Object.keys(stored).sort(), ['format', 'jwe', 'version']);
      assert.equal(stored.format, 'mintgate-keystore/1');
      assert.equal(stored.version, '1');
      const everything = JSON.stringify(stored);
      assert.ok(!everything.includes('"d"'), 'no "d" member');
      assert.ok(!everything.includes(String(doc.keys[0]!.jwk.d)), 'no private key value');
      assert.ok(!everything.includes(Buffer.from(key).toString('base64url')), 'no KEK');
      const parts = stored.jwe!.split('.');
      assert.equal(parts.length, 5, 'a compact JWE');
      const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString()) as Record<string, unknown>;
      assert.equal(header.alg, 'A256KW');
      assert.equal(header.enc, 'A256GCM');
      assert.equal(header.keystore_version, 1);
    });

    it('fails clearly under a wrong KEK, and on a tampered record', async () => {
      const prefix = uniquePrefix();
      await new RedisKeystoreRepository(client, kek(), prefix).save(await docWith(1));
      await assert.rejects(new RedisKeystoreRepository(client, kek(), prefix).load(), (err: Error) => {
        assert.ok(err instanceof KeystoreUnreadable);
        assert.match(err.message, /encrypted under another MINTGATE_KEK/);
        return true;
      });

      const key = kek();
      const repo = new RedisKeystoreRepository(client, key, prefix + 'x');
      await repo.save(await docWith(1));
      const redis = client as Redis;
      await redis.hset(`${prefix}x:keystore`, 'version', '7');
      await assert.rejects(repo.load(), /KeystoreUnreadable.*version field \(7\) does not match/s);
      await redis.hset(`${prefix}x:keystore`, 'version', '1');
      const jwe = (await redis.hget(`${prefix}x:keystore`, 'jwe'))!;
      const parts = jwe.split('.');
      parts[3] = (parts[3]!.startsWith('A') ? 'B' : 'A') + parts[3]!.slice(1);
      await redis.hset(`${prefix}x:keystore`, 'jwe', parts.join('.'));
      await assert.rejects(repo.load(), /cannot be decrypted with this MINTGATE_KEK/);
      assert.throws(() => new RedisKeystoreRepository(client, new Uint8Array(16)), TypeError);
    });

    it('compare-and-set: a broker holding a stale version cannot overwrite a newer keystore', async () => {
      const prefix = uniquePrefix();
      const key = kek();
      const a = new RedisKeystoreRepository(client, key, prefix);
      const b = new RedisKeystoreRepository(client, key, prefix);
      await a.save(await docWith(1));
      const seenByB = (await b.load())!;
      const newer = await docWith(2, 2);
      await a.save(newer);

      const stale = { ...seenByB, version: seenByB.version + 1, keys: [...seenByB.keys, ...(await docWith(0)).keys] };
      assert.deepEqual(await b.saveIfVersion(stale, seenByB.version), { saved: false, version: 2 });
      await assert.rejects(b.save(stale), (err: Error) => err instanceof KeystoreVersionConflict && err.found === 2 && err.expected === 1);
      assert.deepEqual(await b.load(), newer);
      await assert.rejects(b.saveIfVersion(await docWith(2), 2), TypeError, 'versions only grow');

      // Two brokers creating the first keystore at once: exactly one wins.
      const race = uniquePrefix();
      const results = await Promise.allSettled([1, 2, 3].map(async () => new RedisKeystoreRepository(client, key, race).save(await docWith(1))));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof KeystoreVersionConflict);
    });

    it('lets a second broker pick up a rotation from the version bump', async () => {
      const prefix = uniquePrefix();
      const key = kek();
      await assertSecondBrokerPicksUpRotation(() => new RedisKeystoreRepository(client, key, prefix));
    });
  });
});

describe('parseRedisUrl', () => {
  const ok: Array<[string, RedisTarget]> = [
    ['redis://127.0.0.1', { mode: 'standalone', host: '127.0.0.1', port: 6379, db: 0, tls: false }],
    ['redis://redis.internal:6380/3', { mode: 'standalone', host: 'redis.internal', port: 6380, db: 3, tls: false }],
    ['redis://cache:7000/', { mode: 'standalone', host: 'cache', port: 7000, db: 0, tls: false }],
    ['rediss://:s3cr%40t@redis.example.com:6380/1', { mode: 'standalone', host: 'redis.example.com', port: 6380, db: 1, tls: true, password: 's3cr@t' }],
    ['redis://mintgate:pw@[::1]:6379', { mode: 'standalone', host: '::1', port: 6379, db: 0, tls: false, username: 'mintgate', password: 'pw' }],
    ['REDIS://h', { mode: 'standalone', host: 'h', port: 6379, db: 0, tls: false }],
    [
      'redis-sentinel://s1:26379,s2:26380,s3/mymaster',
      { mode: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }, { host: 's3', port: 26379 }], name: 'mymaster', db: 0 },
    ],
    ['redis-sentinel://:pw@s1:26379/my%20master/4', { mode: 'sentinel', sentinels: [{ host: 's1', port: 26379 }], name: 'my master', db: 4, password: 'pw' }],
    [
      'redis-cluster://u:pw@n1:7000,n2:7001,[fd00::2]',
      { mode: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }, { host: 'fd00::2', port: 6379 }], username: 'u', password: 'pw' },
    ],
  ];
  for (const [url, expected] of ok) {
    it(`parses ${url}`, () => {
      assert.deepEqual(parseRedisUrl(url), expected);
    });
  }

  const bad: Array<[string, RegExp]> = [
    ['memory', /not a URL/],
    ['http://h:6379', /scheme must be/],
    ['redis://', /"" is not host\[:port\]/],
    ['redis://h:0', /port 0 is out of range/],
    ['redis://h:99999', /port 99999 is out of range/],
    ['redis://h:port', /is not host\[:port\]/],
    ['redis://h1,h2', /takes one host/],
    ['redis://h/db1', /database must be a number/],
    ['redis://h/1/2', /only be the database number/],
    ['redis://h?tls=true', /query strings/],
    ['redis://secret@h', /:password@/],
    ['redis://:%zz@h', /percent-encoding/],
    ['redis-sentinel://s1,s2', /\/<master name>/],
    ['redis-sentinel://s1/m/x', /database must be a number/],
    ['redis-cluster://n1,n2/0', /no path/],
    ['redis-cluster://n1,,n2', /"" is not host/],
  ];
  for (const [url, message] of bad) {
    it(`refuses ${url}`, () => {
      assert.throws(() => parseRedisUrl(url), (err: Error) => err instanceof TypeError && message.test(err.message));
    });
  }

  it('never puts the password in a message', () => {
    assert.throws(() => parseRedisUrl('redis://user:hunter2@h:notaport'), (err: Error) => {
      assert.ok(!err.message.includes('hunter2'), err.message);
      assert.match(err.message, /redis:\/\/user:\*\*\*@h:notaport/);
      return true;
    });
    assert.equal(redactRedisUrl('redis-sentinel://:pw@s1,s2/m'), 'redis-sentinel://:***@s1,s2/m');
    assert.equal(redactRedisUrl('redis://h:6379'), 'redis://h:6379');
  });
});

describe('createRedisClient', () => {
  it('fails fast: no offline queue, one retry per command, timeouts, endless capped reconnection', () => {
    const client = createRedisClient('redis://:pw@127.0.0.1:1/5', { onError: quiet, connectTimeoutMs: 300, maxReconnectDelayMs: 700 });
    try {
      assert.ok(client instanceof Redis);
      const o = client.options;
      assert.equal(o.enableOfflineQueue, false);
      assert.equal(o.maxRetriesPerRequest, 1);
      assert.equal(o.connectTimeout, 300);
      assert.equal(o.commandTimeout, 2_000);
      assert.equal(o.password, 'pw');
      assert.equal(o.db, 5);
      const delays = [1, 2, 5, 50, 10_000].map((n) => o.retryStrategy!(n));
      for (const d of delays) assert.ok(typeof d === 'number' && d > 0 && d < 800, `delay ${d}`);
    } finally {
      client.disconnect();
    }
  });

  it('makes a Sentinel client and a Cluster client from their URLs', () => {
    const sentinel = createRedisClient('redis-sentinel://127.0.0.1:1,127.0.0.1:2/mymaster', { onError: quiet });
    try {
      assert.ok(sentinel instanceof Redis);
      assert.equal(sentinel.options.name, 'mymaster');
      assert.deepEqual(sentinel.options.sentinels, [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: 2 }]);
      assert.equal(sentinel.options.enableOfflineQueue, false);
    } finally {
      sentinel.disconnect();
    }
    const cluster = createRedisClient('redis-cluster://127.0.0.1:1,127.0.0.1:2', { onError: quiet });
    try {
      assert.ok(cluster instanceof Cluster);
      assert.equal(cluster.options.enableOfflineQueue, false);
      assert.equal(cluster.options.redisOptions?.maxRetriesPerRequest, 1);
    } finally {
      cluster.disconnect();
    }
  });
});
