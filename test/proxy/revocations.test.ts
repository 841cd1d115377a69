/** The proxy's deny-list: jti (and ancestors), job, sub-before-time; widened, never narrowed; pruned. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RevocationSet } from '../../src/proxy/revocations.js';

describe('RevocationSet', () => {
  let now = 1_000_000_000_000;
  const set = new RevocationSet(() => now);
  const token = { jti: 'j1', job_id: 'job1', sub: 's1', iat: now / 1000 - 10, ancestors: ['p1', 'g1'] };

  it('covers nothing at first', () => assert.equal(set.covers(token), null));

  it('by jti, by an ancestor jti, by job', () => {
    set.add({ kind: 'jti', value: 'g1', at: now, until: now + 60_000 });
    assert.equal(set.covers(token), 'jti');
    assert.equal(set.covers({ ...token, ancestors: [] }), null);
    set.add({ kind: 'job', value: 'job1', at: now, until: now + 60_000 });
    assert.equal(set.covers({ ...token, ancestors: [] }), 'job');
  });

  it('by subject: only tokens issued at or before the revocation', () => {
    const other = { jti: 'x', job_id: 'other', sub: 's2', iat: Math.floor(now / 1000), ancestors: [] };
    set.add({ kind: 'sub', value: 's2', at: now, until: now + 60_000 });
    assert.equal(set.covers(other), 'sub');
    assert.equal(set.covers({ ...other, iat: Math.floor(now / 1000) + 1 }), null);
    // An older revocation arriving later does not narrow the newer one.
    set.add({ kind: 'sub', value: 's2', at: now - 50_000, until: now + 1_000 });
    assert.equal(set.covers(other), 'sub');
  });

  it('forgets what expired', () => {
    assert.ok(set.size > 0);
    now += 120_000;
    assert.equal(set.covers(token), null);
    set.prune();
    assert.equal(set.size, 0);
    set.add({ kind: 'jti', value: 'late', at: now - 10, until: now - 1 });
    assert.equal(set.size, 0, 'an already-expired revocation is not kept');
  });
});
