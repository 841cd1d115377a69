/** Trust rules: anchored globs, dotted claim paths, CEL conditions and identities, first match wins. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildBrokerConfig } from '../../src/config/broker.js';
import { compileTrust, decide, globToRegExp, readClaim, RuleEvaluationError } from '../../src/exchange/policy.js';
import { decideGrant, scopeCovers } from '../../src/exchange/grant.js';

const grant = { audiences: ['gw'], scopes: ['inference:invoke'] };
function entryWith(rules: unknown[]) {
  const config = buildBrokerConfig({ trust: [{ name: 'e', issuer: 'https://idp.example', audiences: ['mintgate'], rules }] }, { env: {} });
  return compileTrust(config.trust).get('https://idp.example')!;
}

describe('globs', () => {
  const table: Array<[string, string, boolean]> = [
    ['acme/models', 'acme/models', true],
    ['acme/models', 'acme/models-evil', false],
    ['acme/models', 'evil/acme/models', false],
    ['refs/heads/*', 'refs/heads/main', true],
    ['refs/heads/*', 'refs/heads/feature/x', true],
    ['refs/heads/*', 'refs/tags/v1', false],
    ['acme/*', 'acme/', true],
    ['a.b', 'aXb', false],
    ['(x)+', '(x)+', true],
    ['repo:acme/*:ref:refs/heads/main', 'repo:acme/m:ref:refs/heads/main', true],
    ['*', 'anything\nat all', true],
  ];
  for (const [glob, value, expected] of table) {
    it(`${glob} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(value)}`, () => assert.equal(globToRegExp(glob).test(value), expected));
  }
});

describe('claim paths', () => {
  const claims = { 'kubernetes.io': { namespace: 'ml', serviceaccount: { name: 'sa' } }, a: { b: 'x' }, 'a.b': 'y', list: ['p', 'q'] };
  it('finds nested claims and claim names with dots', () => {
    assert.equal(readClaim(claims, 'kubernetes.io.namespace'), 'ml');
    assert.equal(readClaim(claims, 'kubernetes.io.serviceaccount.name'), 'sa');
    assert.equal(readClaim(claims, 'a.b'), 'y', 'the longest existing key wins');
    assert.equal(readClaim(claims, 'missing.path'), undefined);
    assert.deepEqual(readClaim(claims, 'list'), ['p', 'q']);
  });
});

describe('rule decisions', () => {
  const entry = entryWith([
    { name: 'main', match: { repository: 'acme/models', ref: 'refs/heads/main' }, condition: 'claims.run_attempt == "1"', subject: 'claims.repository + "@" + claims.ref', job: 'claims.run_id + "-" + claims.run_attempt', grant },
    { name: 'any-acme', match: { repository: 'acme/*' }, grant },
    { name: 'k8s', match: { 'kubernetes.io.namespace': ['ml', 'ml-*'] }, job: 'claims["kubernetes.io"].pod.uid', grant },
    { name: 'groups', match: { groups: 'ml-analysts' }, grant },
    { name: 'needs-claim', match: { kind: 'x' }, subject: 'claims.owner', grant },
  ]);
  const base = { sub: 'repo:acme/models:ref:refs/heads/main', repository: 'acme/models', ref: 'refs/heads/main', run_id: '7', run_attempt: '1', jti: 'j-1' };

  it('first matching rule wins, with CEL subject and job', () => {
    const d = decide(entry, base)!;
    assert.equal(d.rule.clientId, 'e/main');
    assert.equal(d.subject, 'acme/models@refs/heads/main');
    assert.equal(d.job, '7-1');
  });
  it('a failing condition falls through to the next rule, whose defaults apply', () => {
    const d = decide(entry, { ...base, run_attempt: '2' })!;
    assert.equal(d.rule.name, 'any-acme');
    assert.equal(d.subject, base.sub);
    assert.equal(d.job, 'j-1');
  });
  it('a condition reading a missing claim is false, not an error', () => {
    const { run_attempt: _gone, ...noAttempt } = base;
    assert.equal(decide(entry, noAttempt)!.rule.name, 'any-acme');
  });
  it('no job expression and no jti leaves the job to the broker', () => {
    const { jti: _gone, ...noJti } = base;
    assert.equal(decide(entry, { ...noJti, run_attempt: '3' })!.job, undefined);
  });
  it('matches nested claims, lists of patterns and list claims', () => {
    const k8s = { sub: 'system:serviceaccount:ml-dev:x', 'kubernetes.io': { namespace: 'ml-dev', pod: { uid: 'u1' } } };
    assert.equal(decide(entry, k8s)!.job, 'u1');
    assert.equal(decide(entry, { sub: 's', groups: ['users', 'ml-analysts'] })!.rule.name, 'groups');
    assert.equal(decide(entry, { sub: 's', groups: ['users'] }), null);
  });
  it('non-string claim values match by their text; objects never match', () => {
    assert.equal(decide(entry, { sub: 's', repository: { name: 'acme/models' } }), null);
  });
  it('a matched rule whose subject expression fails refuses the exchange', () => {
    assert.throws(() => decide(entry, { sub: 's', kind: 'x' }), RuleEvaluationError);
  });
  it('no rule: null', () => assert.equal(decide(entry, { sub: 's', repository: 'other/x' }), null));
});

describe('grants', () => {
  const ceiling = { audiences: ['gw', 'eval'], scopes: ['inference:invoke', 'model:*'], maxTtl: 600 };
  it('wildcard scopes cover their prefix only', () => {
    assert.ok(scopeCovers('model:*', 'model:llama'));
    assert.ok(scopeCovers('model:*', 'model:*'));
    assert.ok(!scopeCovers('model:*', 'modelx:llama'));
    assert.ok(!scopeCovers('model:llama', 'model:*'));
    assert.ok(!scopeCovers('inference:invoke', 'inference:invoke2'));
  });
  it('defaults, subsets, clamping', () => {
    assert.deepEqual(decideGrant(ceiling, { audience: undefined, scopes: undefined, expiresIn: undefined }, 300), { audience: 'gw', scopes: ['inference:invoke', 'model:*'], ttl: 300 });
    assert.deepEqual(decideGrant(ceiling, { audience: 'eval', scopes: ['model:a', 'model:a'], expiresIn: 9999 }, 300), { audience: 'eval', scopes: ['model:a'], ttl: 600 });
    assert.throws(() => decideGrant(ceiling, { audience: 'x', scopes: undefined, expiresIn: undefined }, 300), { code: 'invalid_target' });
    assert.throws(() => decideGrant(ceiling, { audience: undefined, scopes: ['admin'], expiresIn: undefined }, 300), { code: 'invalid_scope' });
  });
});
