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

import {
  APPROVAL_LIST_LIMIT,
  compareFeedIds,
  type Approval,
  type FeedEvent,
  type IssuedToken,
  type NewApproval,
  type NewRevocation,
  type Revocation,
  type Store,
  type TokenRef,
} from '../../src/store/store.js';

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

/** Revocations as the feed carries them. */
const asEvents = (revocations: Revocation[]): FeedEvent[] => revocations.map((r) => ({ type: 'revocation', id: r.id, revocation: r }));

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
        assert.equal((await store.feedAfter(null, 100)).length, 8);

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
        assert.deepEqual(await store.feedAfter(null, 100), asEvents([jtiLong, jtiTwice, subTwice]));
        assert.deepEqual(await store.feedAfter(jtiTwice.id, 1), asEvents([subTwice]), 'the limit counts live events only');
      });
    });

    describe('feed: revocations', () => {
      /** Revokes `count` jtis one after another, moving the clock 1 ms every third one. */
      const revokeMany = async (count: number, tag = 'r'): Promise<Revocation[]> => {
        const out: Revocation[] = [];
        for (let i = 0; i < count; i++) {
          if (i % 3 === 2) await advance(1);
          out.push(await store.revoke(rev('jti', `${tag}-${i}`)));
        }
        return out;
      };

      const assertIncreasing = (events: ReadonlyArray<{ id: string }>): void => {
        for (const e of events) assert.match(e.id, FEED_ID);
        for (let i = 1; i < events.length; i++) {
          assert.ok(compareFeedIds(events[i - 1]!.id, events[i]!.id) < 0, `${events[i - 1]!.id} then ${events[i]!.id}`);
        }
      };

      it('is empty before the first revocation', async () => {
        assert.deepEqual(await store.feedAfter(null, 10), []);
      });

      it('waitForFeed answers at once when events are there', async () => {
        const [first, second] = await revokeMany(2, 'w');
        const started = Date.now();
        assert.deepEqual((await store.waitForFeed(null, 10, 5_000)).map((e) => e.id), [first!.id, second!.id]);
        assert.deepEqual((await store.waitForFeed(first!.id, 10, 5_000)).map((e) => e.id), [second!.id]);
        assert.ok(Date.now() - started < 1_000, 'no waiting when there is something to read');
      });

      it('waitForFeed wakes up for a new event, and times out empty', async () => {
        const [first] = await revokeMany(1, 'wake');
        const waiting = store.waitForFeed(first!.id, 10, 1_400);
        await new Promise((r) => setTimeout(r, 100));
        const later = await store.revoke(rev('job', 'wake-job'));
        const started = Date.now();
        assert.deepEqual((await waiting).map((e) => e.id), [later.id]);
        assert.ok(Date.now() - started < 1_000, 'woken by the event, not by the timeout');
        const empty = Date.now();
        assert.deepEqual(await store.waitForFeed(later.id, 10, 300), []);
        assert.ok(Date.now() - empty >= 250, 'waited about waitMs');
      });

      it('waitForFeed from the very start wakes up for the first event', async () => {
        const waiting = store.waitForFeed(null, 10, 1_400);
        await new Promise((r) => setTimeout(r, 100));
        const first = await store.revoke(rev('sub', 'first-ever'));
        assert.deepEqual((await waiting).map((e) => e.id), [first.id]);
      });

      it('gives strictly increasing ids, also within one millisecond and under concurrency', async () => {
        const sequential = await revokeMany(7);
        assertIncreasing(sequential);
        const concurrent = await Promise.all(Array.from({ length: 20 }, (_, i) => store.revoke(rev('job', `c-${i}`))));
        assert.equal(new Set(concurrent.map((r) => r.id)).size, 20, 'ids are unique');
        for (const r of concurrent) assert.ok(compareFeedIds(sequential.at(-1)!.id, r.id) < 0);
        // The feed's order is the ids' order, whatever order the promises resolved in.
        const feed = await store.feedAfter(null, 100);
        assertIncreasing(feed);
        assert.deepEqual(feed, asEvents([...sequential, ...[...concurrent].sort((a, b) => compareFeedIds(a.id, b.id))]));
      });

      it('null starts from the oldest kept; an id starts just after it (exclusive); limit caps the page', async () => {
        const all = await revokeMany(5);
        assert.deepEqual(await store.feedAfter(null, 100), asEvents(all));
        assert.deepEqual(await store.feedAfter(null, 2), asEvents(all.slice(0, 2)));
        assert.deepEqual(await store.feedAfter(all[1]!.id, 2), asEvents(all.slice(2, 4)));
        assert.deepEqual(await store.feedAfter(all[3]!.id, 2), asEvents(all.slice(4)));
        assert.deepEqual(await store.feedAfter(all[4]!.id, 2), []);
        assert.deepEqual(await store.feedAfter('0-0', 100), asEvents(all), 'an id older than everything');
        const [ms, seq] = all[4]!.id.split('-').map(Number) as [number, number];
        assert.deepEqual(await store.feedAfter(`${ms + 60_000}-0`, 100), [], 'an id newer than everything');
        assert.deepEqual(await store.feedAfter(`${ms}-${seq + 1}`, 100), [], 'an id that was never issued');
      });

      it('pages through everything with nothing lost or repeated, while more arrives', async () => {
        const first = await revokeMany(11, 'first');
        const seen: FeedEvent[] = [];
        let cursor: string | null = null;
        for (let page = 0; page < 3; page++) {
          const events = await store.feedAfter(cursor, 4);
          seen.push(...events);
          cursor = events.at(-1)?.id ?? cursor;
        }
        assert.deepEqual(seen, asEvents(first));
        // Caught up: nothing more, until new revocations arrive; those come next, once each.
        assert.deepEqual(await store.feedAfter(cursor, 4), []);
        const second = await revokeMany(3, 'second');
        const rest = await store.feedAfter(cursor, 4);
        assert.deepEqual(rest, asEvents(second));
        assert.deepEqual(await store.feedAfter(rest.at(-1)!.id, 4), []);
        assert.deepEqual(await store.feedAfter(null, 100), asEvents([...first, ...second]));
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
          await store.feedAfter(null, 10),
          asEvents(inputs.map((r, i) => ({ ...r, id: stored[i]!.id }))),
        );
      });

      it('refuses an id that is not <ms>-<seq> with a TypeError (never "nothing new")', async () => {
        await revokeMany(2);
        for (const bad of ['', 'garbage', '12', '12-', '-1', '1-2-3', '1.5-0', ' 1-0', '$', '99999999999999999999-0']) {
          await assert.rejects(store.feedAfter(bad, 10), TypeError, `afterId ${JSON.stringify(bad)}`);
        }
      });
    });

    describe('approvals', () => {
      let approvals = 0;
      /** A pending approval made now that lives `LONG_MS`, with a fresh id. */
      const newApproval = (extra: Partial<NewApproval> = {}): NewApproval => ({
        id: `apr_${String(++approvals).padStart(22, '0')}`,
        jti: 'jti-held',
        sub: 'acme/models@refs/heads/main',
        job_id: '42-1',
        route: 'export',
        method: 'POST',
        path: '/v1/models/llama-3-8b/export?format=gguf',
        model: 'llama-3-8b',
        request_sha256: 'ab'.repeat(32),
        created_at: clock,
        expires_at: clock + LONG_MS,
        ...extra,
      });

      it('createApproval stores it pending; getApproval reads it back as an equal copy', async () => {
        const input = newApproval();
        const created = await store.createApproval(input);
        assert.deepEqual(created, { ...input, status: 'pending' });
        const got = await store.getApproval(input.id, clock);
        assert.deepEqual(got, { ...input, status: 'pending' });
        got!.path = 'changed';
        assert.equal((await store.getApproval(input.id, clock))?.path, input.path, 'the copy we get is ours');
      });

      it('keeps optional members absent, and values that look like patterns or hash tags apart', async () => {
        const { model: _model, ...input } = newApproval({ sub: 'repo:{acme}/*', job_id: 'job}{', path: '/a/{b}/ünï "q" \\' });
        await store.createApproval(input);
        const got = await store.getApproval(input.id, clock);
        assert.deepEqual(got, { ...input, status: 'pending' });
        for (const member of ['model', 'decided_by', 'decided_at']) assert.equal(Object.hasOwn(got!, member), false, member);
      });

      it('returns null for an unknown id, and refuses to create an id twice', async () => {
        const input = newApproval();
        await store.createApproval(input);
        assert.equal(await store.getApproval('apr_unknown', clock), null);
        assert.equal(await store.getApproval('', clock), null);
        await assert.rejects(store.createApproval({ ...input, jti: 'other' }), TypeError);
        assert.equal((await store.getApproval(input.id, clock))?.jti, input.jti, 'the first one stands');
      });

      it('decideApproval approves or denies once: decided, then conflict; unknown ids are unknown', async () => {
        const a = newApproval();
        const b = newApproval();
        await store.createApproval(a);
        await store.createApproval(b);
        await advance(5);
        const approved = await store.decideApproval(a.id, 'approved', 'alice', clock);
        assert.equal(approved.outcome, 'decided');
        const decidedA: Approval = { ...a, status: 'approved', decided_by: 'alice', decided_at: clock };
        assert.deepEqual(approved.outcome === 'decided' && approved.approval, decidedA);
        assert.deepEqual(await store.getApproval(a.id, clock), decidedA);

        const denied = await store.decideApproval(b.id, 'denied', 'bob', clock);
        assert.deepEqual(denied.outcome === 'decided' && denied.approval, { ...b, status: 'denied', decided_by: 'bob', decided_at: clock });

        for (const decision of ['approved', 'denied'] as const) {
          assert.deepEqual(await store.decideApproval(a.id, decision, 'mallory', clock + 1), { outcome: 'conflict', approval: decidedA });
        }
        assert.deepEqual(await store.decideApproval('apr_unknown', 'approved', 'alice', clock), { outcome: 'unknown' });
      });

      it('of concurrent decisions exactly one wins, with exactly one feed event', async () => {
        const a = newApproval();
        await store.createApproval(a);
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.decideApproval(a.id, i % 2 ? 'approved' : 'denied', `approver-${i}`, clock)),
        );
        const winners = results.filter((r) => r.outcome === 'decided');
        assert.equal(winners.length, 1, JSON.stringify(results.map((r) => r.outcome)));
        const winner = winners[0]!.outcome === 'decided' ? winners[0]!.approval : undefined;
        for (const r of results) if (r.outcome === 'conflict') assert.deepEqual(r.approval, winner);
        const feed = await store.feedAfter(null, 100);
        assert.deepEqual(feed.map((e) => e.type === 'approval' && e.approval), [winner]);
      });

      it('a pending approval past expires_at reads as expired and can no longer be decided', async () => {
        const short = newApproval({ expires_at: clock + SHORT_TTL_S * 1000 });
        const long = newApproval();
        await store.createApproval(short);
        await store.createApproval(long);
        assert.equal((await store.getApproval(short.id, clock))?.status, 'pending');
        await advance(PAST_SHORT_TTL_MS);
        assert.deepEqual(await store.getApproval(short.id, clock), { ...short, status: 'expired' }, 'still kept, as expired');
        assert.deepEqual(await store.decideApproval(short.id, 'approved', 'alice', clock), { outcome: 'conflict', approval: { ...short, status: 'expired' } });
        assert.equal((await store.getApproval(short.id, clock))?.status, 'expired', 'unchanged');
        assert.equal((await store.decideApproval(long.id, 'approved', 'alice', clock)).outcome, 'decided');
        assert.deepEqual((await store.feedAfter(null, 10)).map((e) => e.type === 'approval' && e.approval.id), [long.id], 'no event for the expired one');
        // Exactly at expires_at it has expired (as a revocation's `until`).
        const edge = newApproval({ expires_at: clock + LONG_MS });
        await store.createApproval(edge);
        assert.equal((await store.getApproval(edge.id, edge.expires_at - 1))?.status, 'pending');
        assert.equal((await store.getApproval(edge.id, edge.expires_at))?.status, 'expired');
        assert.equal((await store.decideApproval(edge.id, 'denied', 'alice', edge.expires_at)).outcome, 'conflict');
      });

      it('listApprovals: newest created first, as they read at `now`, filtered by status', async () => {
        const made: NewApproval[] = [];
        for (let i = 0; i < 5; i++) {
          made.push(newApproval({ created_at: clock, expires_at: clock + (i === 0 ? SHORT_TTL_S * 1000 : LONG_MS) }));
          await store.createApproval(made.at(-1)!);
          await advance(2);
        }
        await store.decideApproval(made[1]!.id, 'approved', 'alice', clock);
        await store.decideApproval(made[2]!.id, 'denied', 'bob', clock);
        const all = await store.listApprovals(clock);
        assert.deepEqual(all.map((a) => a.id), made.map((a) => a.id).reverse());
        assert.deepEqual(all.map((a) => a.status), ['pending', 'pending', 'denied', 'approved', 'pending']);
        assert.deepEqual((await store.listApprovals(clock, 'approved')).map((a) => a.id), [made[1]!.id]);
        assert.deepEqual((await store.listApprovals(clock, 'denied')).map((a) => a.id), [made[2]!.id]);
        assert.deepEqual((await store.listApprovals(clock, 'pending')).map((a) => a.id), [made[4]!.id, made[3]!.id, made[0]!.id]);
        assert.deepEqual(await store.listApprovals(clock, 'expired'), []);
        await advance(PAST_SHORT_TTL_MS);
        assert.deepEqual((await store.listApprovals(clock, 'expired')).map((a) => a.id), [made[0]!.id]);
        assert.deepEqual((await store.listApprovals(clock, 'pending')).map((a) => a.id), [made[4]!.id, made[3]!.id]);
      });

      it(`listApprovals returns at most the newest ${APPROVAL_LIST_LIMIT}; older ones stay readable by id`, async () => {
        const base = clock;
        const made: NewApproval[] = Array.from({ length: APPROVAL_LIST_LIMIT + 3 }, (_, i) => newApproval({ created_at: base + i, expires_at: base + LONG_MS }));
        for (let i = 0; i < made.length; i += 100) await Promise.all(made.slice(i, i + 100).map((a) => store.createApproval(a)));
        const listed = await store.listApprovals(clock);
        assert.equal(listed.length, APPROVAL_LIST_LIMIT);
        assert.equal(listed[0]!.id, made.at(-1)!.id);
        assert.equal(listed.at(-1)!.id, made[3]!.id);
        assert.equal((await store.getApproval(made[0]!.id, clock))?.id, made[0]!.id);
      });
    });

    describe('feed: approval decisions among revocations', () => {
      let approvals = 0;
      const approval = (extra: Partial<NewApproval> = {}): NewApproval => ({
        id: `apr_feed${String(++approvals).padStart(18, '0')}`,
        jti: 'jti-f',
        sub: 'sub-f',
        job_id: 'job-f',
        route: 'export',
        method: 'POST',
        path: '/v1/export',
        request_sha256: '0'.repeat(64),
        created_at: clock,
        expires_at: clock + LONG_MS,
        ...extra,
      });

      it('carries each decision in order with revocations, one sequence of ids, resumable from any id', async () => {
        const a = approval();
        const b = approval({ model: 'm' });
        await store.createApproval(a);
        await store.createApproval(b);
        assert.deepEqual(await store.feedAfter(null, 10), [], 'creating puts nothing on the feed');
        const r1 = await store.revoke(rev('jti', 'before'));
        const da = await store.decideApproval(a.id, 'approved', 'alice', clock);
        const r2 = await store.revoke(rev('job', 'between'));
        const db = await store.decideApproval(b.id, 'denied', 'bob', clock);
        assert.ok(da.outcome === 'decided' && db.outcome === 'decided');
        const expected: FeedEvent[] = [
          { type: 'revocation', id: r1.id, revocation: r1 },
          { type: 'approval', id: da.event_id, approval: da.approval },
          { type: 'revocation', id: r2.id, revocation: r2 },
          { type: 'approval', id: db.event_id, approval: db.approval },
        ];
        const feed = await store.feedAfter(null, 10);
        assert.deepEqual(feed, expected);
        for (const e of feed) assert.match(e.id, FEED_ID);
        for (let i = 1; i < feed.length; i++) assert.ok(compareFeedIds(feed[i - 1]!.id, feed[i]!.id) < 0);
        for (let i = 0; i < expected.length; i++) assert.deepEqual(await store.feedAfter(expected[i]!.id, 10), expected.slice(i + 1), `after event ${i}`);
        assert.deepEqual(await store.feedAfter(r1.id, 1), expected.slice(1, 2), 'limit');
      });

      it('waitForFeed wakes up for a decision', async () => {
        const r = await store.revoke(rev('sub', 'wake'));
        const a = approval();
        await store.createApproval(a);
        const waiting = store.waitForFeed(r.id, 10, 1_400);
        await new Promise((resolve) => setTimeout(resolve, 100));
        const decided = await store.decideApproval(a.id, 'approved', 'alice', clock);
        const started = Date.now();
        assert.deepEqual(await waiting, [{ type: 'approval', id: decided.outcome === 'decided' ? decided.event_id : '', approval: { ...a, status: 'approved', decided_by: 'alice', decided_at: clock } }]);
        assert.ok(Date.now() - started < 1_000, 'woken by the event, not by the timeout');
      });

      it('skips a decision once its approval has expired', async () => {
        const short = approval({ expires_at: clock + SHORT_TTL_S * 1000 });
        await store.createApproval(short);
        await store.decideApproval(short.id, 'approved', 'alice', clock);
        const kept = await store.revoke(rev('jti', 'kept'));
        assert.equal((await store.feedAfter(null, 10)).length, 2);
        await advance(PAST_SHORT_TTL_MS);
        assert.deepEqual(await store.feedAfter(null, 10), asEvents([kept]));
        assert.equal((await store.getApproval(short.id, clock))?.status, 'approved', 'a decided approval stays decided');
      });
    });

    describe('claimAuditEvent', () => {
      it('is true once, then false until the ttl passes; apart from assertion claims', async () => {
        assert.equal(await store.claimAuditEvent('evt-0001', SHORT_TTL_S), true);
        assert.equal(await store.claimAuditEvent('evt-0001', SHORT_TTL_S), false);
        assert.equal(await store.claimAuditEvent('evt-0002', SHORT_TTL_S), true);
        assert.equal(await store.claimAssertion('evt-0001', 60), true, 'an assertion claim of the same string is another thing');
        await advance(PAST_SHORT_TTL_MS);
        assert.equal(await store.claimAuditEvent('evt-0001', 60), true);
      });

      it('admits exactly one of 50 concurrent claims of one id', async () => {
        const results = await Promise.all(Array.from({ length: 50 }, () => store.claimAuditEvent('evt-raced', 60)));
        assert.equal(results.filter((r) => r).length, 1);
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
