/** Config: unknown keys, bad values and impossible combinations stop start-up naming the key. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildBrokerConfig, ConfigError, loadBrokerConfigFile } from '../../src/config/broker.js';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { compileTrust } from '../../src/exchange/policy.js';

const rule = { name: 'r', grant: { audiences: ['a'], scopes: ['s'] } };
const entry = { name: 'gh', issuer: 'https://token.actions.githubusercontent.com', audiences: ['mintgate'], rules: [rule] };

describe('durations', () => {
  const cases: Array<[string, number]> = [['90s', 90], ['5m', 300], ['1h', 3600], ['1h30m', 5400], ['2d', 172800]];
  for (const [text, seconds] of cases) {
    it(`${text} is ${seconds}s`, () => assert.equal(parseDuration(text), seconds));
  }
  for (const bad of ['', '5', 'm5', '5 m', '1.5h', '-5m', '5y', '5M']) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => parseDuration(bad)));
  }
  it('formats back', () => assert.deepEqual([300, 3600, 90, 86400].map(formatDuration), ['5m', '1h', '90s', '1d']));
});

describe('broker config', () => {
  it('applies the documented defaults and freezes the result', () => {
    const config = buildBrokerConfig({}, { env: {} });
    assert.equal(config.issuer, 'http://127.0.0.1:8080');
    assert.deepEqual(config.tokens, { default_ttl: 300, max_ttl: 900, clock_skew: 30, job_revocation_ttl: 86400 });
    assert.deepEqual(config.keys, { dir: 'keys', alg: 'ES256', rotate_every: 86400, publish_ahead: 300, retain_after: 1200 });
    assert.deepEqual(config.limits, { exchanges_per_subject_per_minute: 600, exchanges_per_address_per_minute: 3000, trusted_proxies: [] });
    assert.equal(config.store.url, 'memory');
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.tokens));
    assert.throws(() => {
      (config.tokens as { max_ttl: number }).max_ttl = 1;
    }, TypeError);
  });

  it('takes environment overrides', () => {
    const kek = Buffer.alloc(32, 7).toString('base64url');
    const config = buildBrokerConfig(
      { store: { url: 'memory' } },
      { env: { HOST: '0.0.0.0', PORT: '9999', REDIS_URL: 'redis://r:6379/1', MINTGATE_ADMIN_TOKEN: 'adm', MINTGATE_KEYS_DIR: '/k', MINTGATE_KEK: kek, LOG_LEVEL: 'warn' } },
    );
    assert.equal(config.issuer, 'http://0.0.0.0:9999');
    assert.equal(config.store.url, 'redis://r:6379/1');
    assert.equal(config.adminToken, 'adm');
    assert.equal(config.keys.dir, '/k');
    assert.equal(config.kek?.length, 32);
    assert.equal(config.logLevel, 'warn');
  });

  const refused: Array<[string, unknown, RegExp]> = [
    ['an unknown top-level key', { isuer: 'x' }, /isuer: unknown key/],
    ['an unknown nested key', { tokens: { max_tll: '5m' } }, /tokens\.max_tll: unknown key/],
    ['an unknown rule key', { trust: [{ ...entry, rules: [{ ...rule, grants: {} }] }] }, /trust\[0\]\.rules\[0\]\.grants: unknown key/],
    ['a bad duration', { tokens: { max_ttl: 'soon' } }, /tokens\.max_ttl: "soon" is not a duration/],
    ['a zero duration', { tokens: { clock_skew: '0s' } }, /tokens\.clock_skew/],
    ['retain_after < max_ttl + skew', { tokens: { max_ttl: '15m' }, keys: { retain_after: '10m' } }, /keys\.retain_after: must be at least/],
    ['default_ttl > max_ttl', { tokens: { default_ttl: '1h', max_ttl: '15m' } }, /tokens\.default_ttl/],
    ['publish_ahead >= rotate_every', { keys: { publish_ahead: '1h', rotate_every: '1h' } }, /keys\.publish_ahead/],
    ['an unknown signing alg', { keys: { alg: 'HS256' } }, /keys\.alg/],
    ['alg none for assertions', { trust: [{ ...entry, algorithms: ['none'] }] }, /trust\[0\]\.algorithms\[0\]/],
    ['HS256 for assertions', { trust: [{ ...entry, algorithms: ['HS256'] }] }, /trust\[0\]\.algorithms\[0\]/],
    ['no audiences', { trust: [{ ...entry, audiences: [] }] }, /trust\[0\]\.audiences/],
    ['an empty issuer', { trust: [{ ...entry, issuer: ' ' }] }, /trust\[0\]\.issuer/],
    ['no rules', { trust: [{ ...entry, rules: [] }] }, /trust\[0\]\.rules/],
    ['a rule max_ttl above tokens.max_ttl', { trust: [{ ...entry, rules: [{ ...rule, grant: { ...rule.grant, max_ttl: '1h' } }] }] }, /trust\[0\]\.rules\[0\]\.grant\.max_ttl/],
    ['a duplicate rule name', { trust: [{ ...entry, rules: [rule, rule] }] }, /trust\[0\]\.rules\[1\]\.name/],
    ['an issuer trusted twice', { trust: [entry, { ...entry, name: 'gh2' }] }, /trust\[1\]\.issuer/],
    ['a store URL of another kind', { store: { url: 'postgres://x' } }, /store\.url/],
    ['a scope with a space', { trust: [{ ...entry, rules: [{ ...rule, grant: { audiences: ['a'], scopes: ['a b'] } }] }] }, /trust\[0\]\.rules\[0\]\.grant\.scopes\[0\]/],
    ['an issuer URL that is not http(s)', { issuer: 'ftp://x' }, /issuer/],
    ['a trusted proxy that is not an address', { limits: { trusted_proxies: ['gateway.local'] } }, /limits\.trusted_proxies\[0\]/],
    ['a negative limit', { limits: { exchanges_per_address_per_minute: -1 } }, /limits\.exchanges_per_address_per_minute/],
    ['saml trust, not yet available', { trust: [{ ...entry, type: 'saml' }] }, /trust\[0\]\.type/],
  ];
  for (const [name, raw, message] of refused) {
    it(`stops on ${name}`, () => {
      assert.throws(() => buildBrokerConfig(raw, { env: {} }), (err: unknown) => err instanceof ConfigError && message.test(err.message));
    });
  }

  it('refuses a KEK that is not 32 bytes', () => {
    assert.throws(() => buildBrokerConfig({}, { env: { MINTGATE_KEK: 'c2hvcnQ=' } }), /MINTGATE_KEK/);
  });

  it('reads YAML files, refusing duplicate keys and naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mintgate-config-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'tokens: { default_ttl: 2m }\ntrust:\n  - name: gh\n    issuer: https://x.example\n    audiences: [mintgate]\n    rules:\n      - name: r\n        grant: { audiences: [a], scopes: [s] }\n');
    assert.equal(loadBrokerConfigFile(good, { env: {} }).tokens.default_ttl, 120);
    const dup = join(dir, 'dup.yaml');
    writeFileSync(dup, 'issuer: http://a\nissuer: http://b\n');
    assert.throws(() => loadBrokerConfigFile(dup, { env: {} }), (err: unknown) => err instanceof ConfigError && err.message.includes(dup));
    assert.throws(() => loadBrokerConfigFile(join(dir, 'missing.yaml'), { env: {} }), /cannot read/);
  });

  it('stops on a CEL expression that does not compile, naming the key', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ condition: 'claims.x ==' }, /trust\[0\]\.rules\[0\]\.condition/],
      [{ condition: 'foo.bar' }, /trust\[0\]\.rules\[0\]\.condition/],
      [{ subject: '1 +' }, /trust\[0\]\.rules\[0\]\.subject/],
      [{ job: 'claims.a == "b"' }, /trust\[0\]\.rules\[0\]\.job: must evaluate to string/],
      [{ condition: '"yes"' }, /trust\[0\]\.rules\[0\]\.condition: must evaluate to bool/],
    ];
    for (const [extra, message] of bad) {
      const config = buildBrokerConfig({ trust: [{ ...entry, rules: [{ ...rule, ...extra }] }] }, { env: {} });
      assert.throws(() => compileTrust(config.trust), (err: unknown) => err instanceof ConfigError && message.test(err.message), JSON.stringify(extra));
    }
  });
});
