/**
 * The Store contract (src/store/store.ts) as one suite that every implementation runs, the way
 * hono runs each of its routers through the same cases. memory.test.ts and redis.test.ts call
 * {@link storeSuite}; a new backend gets its own three-line test file and nothing else.
 *
 * Time. The suite owns a clock and hands `now` to the factory. Every case starts it at the real
 * `Date.now()` and moves it only through `advance(ms)`, which first moves the suite's clock and
 * then awaits the factory's `advance(ms)`, if any:
 * - a backend that reads the injected clock (MemoryStore) needs no `advance` at all: the clock
 *   has moved, so expiry cases run instantly;
 * - a backend with its own clock (Redis expires keys by the server's clock) passes an `advance`
 *   that sleeps `ms`, so real time and the suite's clock move together.
 * So every expiry case works on both. TTLs are 1 s and the waits 1.15 s: long enough to be far
 * from Redis's millisecond expiry boundaries, short enough that the Redis run stays quick.
 * Timestamps a case hands to the store (`at`, `until`) come from that same clock.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { compareFeedIds, type IssuedToken, type NewRevocation, type Revocation, type Store, type TokenRef } from '../../src/store/store.js';

/** One store under test, fresh for every case. */
export interface StoreHandle {
  store: Store;
  /**
   * Called after the suite's clock moved forward by `ms`, so a backend with its own clock can
   * catch up (Redis: sleep `ms`). Omit it when the store reads the injected `now`.
   */
  advance?(ms: number): Promise<void>;
  /** Releases everything the factory made (closes the store; a second close must be harmless). */
  cleanup(): Promise<void>;
}

/** Makes a fresh, empty store that reads `now` (epoch milliseconds) if it can. */
export type StoreFactory = (now: () => number) => Promise<StoreHandle>;

/** Seconds a short-lived entry lives in the expiry cases. */
const SHORT_TTL_S = 1;
/** How far the expiry cases move the clock past a short-lived entry, in milliseconds. */
const PAST_SHORT_TTL_MS = 1_150;
/** A lifetime no case outlives, in milliseconds. */
const LONG_MS = 10 * 60_000;

const FEED_ID = /^\d+-\d+$/;

/** Registers the whole Store contract as `describe('Store contract: <name>')`. */
export function storeSuite(name: string, makeStore: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let clock = 0;
    let handle: StoreHandle | undefined;
    let store: Store;

    const now = (): number => clock;
    const advance = async (ms: number): Promise<void> => {
      clock += ms;
      await handle?.advance?.(ms);
    };

    beforeEach(async () => {
      clock = Date.now();
      handle = await makeStore(now);
      store = handle.store;
    });
    afterEach(async () => {
      await handle?.cleanup();
      handle = undefined;
    });

    /** A revocation made now that lives `LONG_MS`, with the given fields. */
    const rev = (kind: NewRevocation['kind'], value: string, extra: Partial<NewRevocation> = {}): NewRevocation => ({
      kind,
      value,
      reason: `test ${kind}`,
      at: clock,
      until: clock + LONG_MS,
      ...extra,
    });

    /** A token issued `agoSeconds` before the suite's clock. */
    const tokenRef = (fields: Partial<TokenRef> = {}, agoSeconds = 5): TokenRef => ({
      jti: 'jti-unrelated',
      job_id: 'job-unrelated',
      sub: 'sub-unrelated',
      iat: Math.floor(clock / 1000) - agoSeconds,
      ...fields,
    });

    describe('claimAssertion', () => {
      it('is true once, then false until the ttl passes, then true again', async () => {
        assert.equal(await store.claimAssertion('assertion-1', SHORT_TTL_S), true);
        assert.equal(await store.claimAssertion('assertion-1', SHORT_TTL_S), false);
        // A refused claim does not extend the first one, whatever ttl it asks for.
        assert.equal(await store.claimAssertion('assertion-1', 3600), false);
        await advance(500);
        assert.equal(await store.claimAssertion('assertion-1', SHORT_TTL_S), false, 'still held half-way through the ttl');
        await advance(PAST_SHORT_TTL_MS - 500);
        assert.equal(await store.claimAssertion('assertion-1', SHORT_TTL_S), true, 'claimable again once the ttl passed');
        assert.equal(await store.claimAssertion('assertion-1', SHORT_TTL_S), false, 'and held again by that claim');
      });

      it('keeps keys apart, including keys that look like patterns or hash tags', async () => {
        const keys = ['a', 'b', 'a*', '{a}', 'a:b', 'iss\u0000jti', 'sha256:' + 'f'.repeat(64), 'ünïcode'];
        for (const key of keys) assert.equal(await store.claimAssertion(key, 60), true, `first claim of ${JSON.stringify(key)}`);
        for (const key of keys) assert.equal(await store.claimAssertion(key, 60), false, `second claim of ${JSON.stringify(key)}`);
      });

      it('admits exactly one of 50 concurrent claims of one key', async () => {
        const results = await Promise.all(Array.from({ length: 50 }, () => store.claimAssertion('raced', 60)));
        assert.equal(results.filter((r) => r === true).length, 1, `results: ${results.join(',')}`);
      });
    });

    describe('issued tokens', () => {
      const issued = (jti: string): IssuedToken => ({
        jti,
        sub: 'repo:acme/models:ref:refs/heads/main',
        job_id: '1234-1',
        client_id: 'github-actions/model-release',
        aud: 'inference-gateway',
        scope: 'inference:invoke model:llama-3-8b',
        iat: Math.floor(clock / 1000),
        exp: Math.floor(clock / 1000) + 300,
        src: { iss: 'https://token.actions.githubusercontent.com', sub: 'repo:acme/models:ref:refs/heads/main', jti: 'assertion-jti' },
        act: { sub: 'parent-sub', jti: 'parent-jti', act: { sub: 'grandparent-sub', jti: 'grandparent-jti' } },
      });

      it('round-trips a record, nested act included, as an equal copy', async () => {
        const token = issued('jti-roundtrip');
        await store.recordIssued(token, 600);
        const expected = structuredClone(token);
        // The store keeps its own copy: changing ours afterwards must not change the record.
        token.scope = 'changed';
        token.act!.act!.jti = 'changed';
        const got = await store.getIssued('jti-roundtrip');
        assert.deepEqual(got, expected);
        // ...and the copy we get back is ours to change.
        got!.src.sub = 'changed';
        assert.deepEqual(await store.getIssued('jti-roundtrip'), expected);
      });

      it('round-trips a record without the optional members, which stay absent', async () => {
        const { act: _act, ...token } = issued('jti-minimal');
        token.src = { iss: 'https://gitlab.example.com', sub: 'project_path:acme/models' };
        await store.recordIssued(token, 600);
        const got = await store.getIssued('jti-minimal');
        assert.deepEqual(got, token);
        assert.equal(Object.hasOwn(got!, 'act'), false);
        assert.equal(Object.hasOwn(got!.src, 'jti'), false);
      });

      it('returns null for an unknown jti', async () => {
        await store.recordIssued(issued('jti-known'), 600);
        assert.equal(await store.getIssued('jti-unknown'), null);
        assert.equal(await store.getIssued(''), null);
      });

      it('forgets a record once its ttl passes', async () => {
        await store.recordIssued(issued('jti-short'), SHORT_TTL_S);
        await store.recordIssued(issued('jti-long'), 600);
        assert.equal((await store.getIssued('jti-short'))?.jti, 'jti-short');
        await advance(PAST_SHORT_TTL_MS);
        assert.equal(await store.getIssued('jti-short'), null);
        assert.equal((await store.getIssued('jti-long'))?.jti, 'jti-long');
      });
    });

    describe('revocations', () => {
      it('revoke resolves with the revocation as given plus a feed id', async () => {
        const input = rev('jti', 'jti-1', { reason: 'leaked in a log' });
        const stored = await store.revoke(input);
        assert.match(stored.id, FEED_ID);
        assert.deepEqual(stored, { ...input, id: stored.id });
      });

      // Each kind covers exactly the tokens whose matching claim equals its value, and nothing
      // else: a jti revocation for "x" does not touch a token whose job or subject is "x".
      const coverage: Array<{ name: string; kind: NewRevocation['kind']; token: Partial<TokenRef>; covered: boolean }> = [
        { name: 'jti covers that token', kind: 'jti', token: { jti: 'x' }, covered: true },
        { name: 'jti does not cover a job named like it', kind: 'jti', token: { job_id: 'x' }, covered: false },
        { name: 'jti does not cover a subject named like it', kind: 'jti', token: { sub: 'x' }, covered: false },
        { name: 'job covers a token of that job', kind: 'job', token: { job_id: 'x' }, covered: true },
        { name: 'job does not cover a jti named like it', kind: 'job', token: { jti: 'x' }, covered: false },
        { name: 'job does not cover a subject named like it', kind: 'job', token: { sub: 'x' }, covered: false },
        { name: 'sub covers a token of that subject issued before', kind: 'sub', token: { sub: 'x' }, covered: true },
        { name: 'sub does not cover a jti named like it', kind: 'sub', token: { jti: 'x' }, covered: false },
        { name: 'sub does not cover a job named like it', kind: 'sub', token: { job_id: 'x' }, covered: false },
      ];
      for (const c of coverage) {
        it(`findRevocation: ${c.name}`, async () => {
          const stored = await store.revoke(rev(c.kind, 'x'));
          const found = await store.findRevocation(tokenRef(c.token));
          assert.deepEqual(found, c.covered ? stored : null);
        });
      }

      it('findRevocation: revoking a token covers every token narrowed from it (ancestors)', async () => {
        const stored = await store.revoke(rev('jti', 'parent'));
        assert.deepEqual(await store.findRevocation(tokenRef({ jti: 'child', ancestors: ['parent'] })), stored);
        assert.deepEqual(await store.findRevocation(tokenRef({ jti: 'grandchild', ancestors: ['child', 'parent'] })), stored);
        assert.equal(await store.findRevocation(tokenRef({ jti: 'sibling', ancestors: ['other-parent'] })), null);
        assert.equal(await store.findRevocation(tokenRef({ jti: 'parent-of-nothing', ancestors: [] })), null);
      });

      it('findRevocation: null when nothing is revoked', async () => {
        assert.equal(await store.findRevocation(tokenRef({ jti: 'a', job_id: 'b', sub: 'c' })), null);
      });

      it('findRevocation: finds a covering revocation among several', async () => {
        const byJti = await store.revoke(rev('jti', 'jti-both'));
        const byJob = await store.revoke(rev('job', 'job-both'));
        const found = await store.findRevocation(tokenRef({ jti: 'jti-both', job_id: 'job-both' }));
        // Which one comes back when several cover a token is not part of the contract.
        assert.ok(found && [byJti.id, byJob.id].includes(found.id), `got ${JSON.stringify(found)}`);
      });

      it('findRevocation by sub: only tokens issued at or before `at` (iat * 1000 <= at)', async () => {
        const at = Math.floor(clock / 1000) * 1000;
        const atSec = at / 1000;
        const stored = await store.revoke(rev('sub', 'alice', { at }));
        const alice = (iat: number): TokenRef => ({ jti: `jti-${iat}`, job_id: 'job', sub: 'alice', iat });
        assert.deepEqual(await store.findRevocation(alice(atSec - 60)), stored, 'issued a minute before');
        assert.deepEqual(await store.findRevocation(alice(atSec)), stored, 'issued in the very second of `at`');
        assert.equal(await store.findRevocation(alice(atSec + 1)), null, 'issued after: a new token of the subject is fine');
        assert.equal(await store.findRevocation({ ...alice(atSec - 60), sub: 'bob' }), null, 'another subject');
      });

      it('findRevocation by sub: a later revocation of the same subject widens `at`, an earlier one never narrows it', async () => {
        const at1 = Math.floor(clock / 1000) * 1000;
        const at1Sec = at1 / 1000;
        const token = (iat: number): TokenRef => ({ jti: `jti-${iat}`, job_id: 'job', sub: 'alice', iat });
        await store.revoke(rev('sub', 'alice', { at: at1 }));
        assert.equal(await store.findRevocation(token(at1Sec + 30)), null);

        await advance(10);
        const at2 = at1 + 60_000;
        await store.revoke(rev('sub', 'alice', { at: at2, reason: 'again' }));
        const widened = await store.findRevocation(token(at1Sec + 30));
        assert.equal(widened?.kind, 'sub');
        assert.equal(widened?.value, 'alice');
        assert.equal(widened?.at, at2);
        assert.equal(await store.findRevocation(token(at1Sec + 61)), null);

        // A revocation that arrives late with an older `at` keeps the wider one.
        await store.revoke(rev('sub', 'alice', { at: at1 - 60_000, reason: 'stale' }));
        assert.equal((await store.findRevocation(token(at1Sec + 30)))?.at, at2);
      });

      it('findJobRevocation: the live revocation of that job, and nothing else', async () => {
        const byJob = await store.revoke(rev('job', 'job-7', { reason: 'job ended' }));
        await store.revoke(rev('jti', 'job-8'));
        await store.revoke(rev('sub', 'job-9'));
        assert.deepEqual(await store.findJobRevocation('job-7'), byJob);
        assert.equal(await store.findJobRevocation('job-8'), null, 'a jti revocation is not a job revocation');
        assert.equal(await store.findJobRevocation('job-9'), null, 'a sub revocation is not a job revocation');
        assert.equal(await store.findJobRevocation('job-unknown'), null);
      });

      it('keeps values apart that look like patterns or hash tags', async () => {
        const value = 'repo:acme/{models}:ref:refs/heads/*';
        const stored = await store.revoke(rev('sub', value));
        assert.deepEqual(await store.findRevocation(tokenRef({ sub: value })), stored);
        assert.equal(await store.findRevocation(tokenRef({ sub: 'repo:acme/{models}:ref:refs/heads/main' })), null);
        assert.equal(await store.findRevocation(tokenRef({ sub: 'repo:acme/{models}:ref:refs/heads/' })), null);
      });

      it('drops a revocation once its `until` passes; of two for one value the later `until` counts', async () => {
        const short = { until: clock + SHORT_TTL_S * 1000 };
        await store.revoke(rev('jti', 'jti-short', short));
        await store.revoke(rev('job', 'job-short', short));
        await store.revoke(rev('sub', 'sub-short', short));
        const jtiLong = await store.revoke(rev('jti', 'jti-long'));
        // The same value revoked twice: first long, then short. The short one must not shorten it.
        const jtiTwice = await store.revoke(rev('jti', 'jti-twice'));
        await store.revoke(rev('jti', 'jti-twice', { ...short, reason: 'second' }));
        const subTwice = await store.revoke(rev('sub', 'sub-twice'));
        await store.revoke(rev('sub', 'sub-twice', { ...short, at: clock - 60_000, reason: 'second' }));

        assert.equal((await store.findRevocation(tokenRef({ jti: 'jti-short' })))?.value, 'jti-short');
        assert.equal((await store.findRevocation(tokenRef({ job_id: 'job-short' })))?.value, 'job-short');
        assert.equal((await store.findJobRevocation('job-short'))?.value, 'job-short');
        assert.equal((await store.findRevocation(tokenRef({ sub: 'sub-short' })))?.value, 'sub-short');
        assert.equal((await store.revocationsAfter(null, 100)).length, 8);

        await advance(PAST_SHORT_TTL_MS);
        assert.equal(await store.findRevocation(tokenRef({ jti: 'jti-short' })), null);
        assert.equal(await store.findRevocation(tokenRef({ job_id: 'job-short' })), null);
        assert.equal(await store.findJobRevocation('job-short'), null);
        assert.equal(await store.findRevocation(tokenRef({ sub: 'sub-short' })), null);
        assert.deepEqual(await store.findRevocation(tokenRef({ jti: 'jti-long' })), jtiLong);
        const twice = await store.findRevocation(tokenRef({ jti: 'jti-twice' }));
        assert.equal(twice?.until, jtiTwice.until);
        const sub = await store.findRevocation(tokenRef({ sub: 'sub-twice' }));
        assert.equal(sub?.at, subTwice.at);
        assert.equal(sub?.until, subTwice.until);

        // The feed drops expired events too, also from its middle: only the long-lived are left.
        assert.deepEqual(await store.revocationsAfter(null, 100), [jtiLong, jtiTwice, subTwice]);
        assert.deepEqual(await store.revocationsAfter(jtiTwice.id, 1), [subTwice], 'the limit counts live events only');
      });
    });

    describe('revocation feed', () => {
      /** Revokes `count` jtis one after another, moving the clock 1 ms every third one. */
      const revokeMany = async (count: number, tag = 'r'): Promise<Revocation[]> => {
        const out: Revocation[] = [];
        for (let i = 0; i < count; i++) {
          if (i % 3 === 2) await advance(1);
          out.push(await store.revoke(rev('jti', `${tag}-${i}`)));
        }
        return out;
      };

      const assertIncreasing = (events: Revocation[]): void => {
        for (const e of events) assert.match(e.id, FEED_ID);
        for (let i = 1; i < events.length; i++) {
          assert.ok(compareFeedIds(events[i - 1]!.id, events[i]!.id) < 0, `${events[i - 1]!.id} then ${events[i]!.id}`);
        }
      };

      it('is empty before the first revocation', async () => {
        assert.deepEqual(await store.revocationsAfter(null, 10), []);
      });

      it('waitForRevocations answers at once when events are there', async () => {
        const [first, second] = await revokeMany(2, 'w');
        const started = Date.now();
        assert.deepEqual((await store.waitForRevocations(null, 10, 5_000)).map((r) => r.id), [first!.id, second!.id]);
        assert.deepEqual((await store.waitForRevocations(first!.id, 10, 5_000)).map((r) => r.id), [second!.id]);
        assert.ok(Date.now() - started < 1_000, 'no waiting when there is something to read');
      });

      it('waitForRevocations wakes up for a new event, and times out empty', async () => {
        const [first] = await revokeMany(1, 'wake');
        const waiting = store.waitForRevocations(first!.id, 10, 1_400);
        await new Promise((r) => setTimeout(r, 100));
        const later = await store.revoke(rev('job', 'wake-job'));
        const started = Date.now();
        assert.deepEqual((await waiting).map((r) => r.id), [later.id]);
        assert.ok(Date.now() - started < 1_000, 'woken by the event, not by the timeout');
        const empty = Date.now();
        assert.deepEqual(await store.waitForRevocations(later.id, 10, 300), []);
        assert.ok(Date.now() - empty >= 250, 'waited about waitMs');
      });

      it('waitForRevocations from the very start wakes up for the first event', async () => {
        const waiting = store.waitForRevocations(null, 10, 1_400);
        await new Promise((r) => setTimeout(r, 100));
        const first = await store.revoke(rev('sub', 'first-ever'));
        assert.deepEqual((await waiting).map((r) => r.id), [first.id]);
      });

      it('gives strictly increasing ids, also within one millisecond and under concurrency', async () => {
        const sequential = await revokeMany(7);
        assertIncreasing(sequential);
        const concurrent = await Promise.all(Array.from({ length: 20 }, (_, i) => store.revoke(rev('job', `c-${i}`))));
        assert.equal(new Set(concurrent.map((r) => r.id)).size, 20, 'ids are unique');
        for (const r of concurrent) assert.ok(compareFeedIds(sequential.at(-1)!.id, r.id) < 0);
        // The feed's order is the ids' order, whatever order the promises resolved in.
        const feed = await store.revocationsAfter(null, 100);
        assertIncreasing(feed);
        assert.deepEqual(feed, [...sequential, ...[...concurrent].sort((a, b) => compareFeedIds(a.id, b.id))]);
      });

      it('null starts from the oldest kept; an id starts just after it (exclusive); limit caps the page', async () => {
        const all = await revokeMany(5);
        assert.deepEqual(await store.revocationsAfter(null, 100), all);
        assert.deepEqual(await store.revocationsAfter(null, 2), all.slice(0, 2));
        assert.deepEqual(await store.revocationsAfter(all[1]!.id, 2), all.slice(2, 4));
        assert.deepEqual(await store.revocationsAfter(all[3]!.id, 2), all.slice(4));
        assert.deepEqual(await store.revocationsAfter(all[4]!.id, 2), []);
        assert.deepEqual(await store.revocationsAfter('0-0', 100), all, 'an id older than everything');
        const [ms, seq] = all[4]!.id.split('-').map(Number) as [number, number];
        assert.deepEqual(await store.revocationsAfter(`${ms + 60_000}-0`, 100), [], 'an id newer than everything');
        assert.deepEqual(await store.revocationsAfter(`${ms}-${seq + 1}`, 100), [], 'an id that was never issued');
      });

      it('pages through everything with nothing lost or repeated, while more arrives', async () => {
        const first = await revokeMany(11, 'first');
        const seen: Revocation[] = [];
        let cursor: string | null = null;
        for (let page = 0; page < 3; page++) {
          const events = await store.revocationsAfter(cursor, 4);
          seen.push(...events);
          cursor = events.at(-1)?.id ?? cursor;
        }
        assert.deepEqual(seen, first);
        // Caught up: nothing more, until new revocations arrive; those come next, once each.
        assert.deepEqual(await store.revocationsAfter(cursor, 4), []);
        const second = await revokeMany(3, 'second');
        const rest = await store.revocationsAfter(cursor, 4);
        assert.deepEqual(rest, second);
        assert.deepEqual(await store.revocationsAfter(rest.at(-1)!.id, 4), []);
        assert.deepEqual(await store.revocationsAfter(null, 100), [...first, ...second]);
      });

      it('carries every kind, with all fields as given', async () => {
        const inputs = [
          rev('jti', 'jti-f', { reason: '' }),
          rev('job', 'job-f', { reason: 'job ended', until: clock + 24 * 3600_000 }),
          rev('sub', 'sub-f', { reason: 'compromised "runner" \\ ünï', at: clock - 1234 }),
        ];
        const stored: Revocation[] = [];
        for (const r of inputs) stored.push(await store.revoke(r));
        assert.deepEqual(
          await store.revocationsAfter(null, 10),
          inputs.map((r, i) => ({ ...r, id: stored[i]!.id })),
        );
      });

      it('refuses an id that is not <ms>-<seq> with a TypeError (never "nothing new")', async () => {
        await revokeMany(2);
        for (const bad of ['', 'garbage', '12', '12-', '-1', '1-2-3', '1.5-0', ' 1-0', '$', '99999999999999999999-0']) {
          await assert.rejects(store.revocationsAfter(bad, 10), TypeError, `afterId ${JSON.stringify(bad)}`);
        }
      });
    });

    describe('lifecycle', () => {
      it('ping resolves', async () => {
        await store.ping();
        assert.ok(store.kind === 'memory' || store.kind === 'redis');
      });

      it('close resolves, and a second close is harmless', async () => {
        await store.close();
        await store.close();
      });
    });
  });
}
