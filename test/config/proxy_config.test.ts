/** Proxy config (CONTRACT section 7): the contract's example loads; mistakes stop start-up naming the key. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/config/broker.js';
import { buildProxyConfig, loadProxyConfigFile } from '../../src/config/proxy.js';

const env = { MINTGATE_PROXY_TOKEN: 'secret', UPSTREAM_API_KEY: 'sk-upstream' };
const minimal = { broker: 'http://127.0.0.1:8080', audience: 'inference-gateway', upstream: 'http://127.0.0.1:9000', routes: [{ name: 'r', path: '/x' }] };

describe('proxy config', () => {
  it("loads CONTRACT section 7's example as written", () => {
    const config = loadProxyConfigFile(new URL('fixtures/contract_proxy.yaml', import.meta.url).pathname, { env });
    assert.equal(config.audience, 'inference-gateway');
    assert.equal(config.upstreamAuthValue, 'Bearer sk-upstream');
    assert.equal(config.feed.max_staleness, 30);
    assert.deepEqual(config.routes.map((r) => r.name), ['chat', 'export', 'secrets']);
    assert.deepEqual(config.routes[0]!.model_scope, ['model']);
    assert.equal(config.routes[1]!.approval?.wait, 60);
    assert.equal(config.routes[2]!.block, true);
    assert.equal(config.block_requests.length, 2);
    assert.ok(config.block_requests[0]!.pattern.matcher('please CAT /etc/shadow').find(), '(?i) ignores case');
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.routes[0]));
  });

  for (const example of ['examples/dev/proxy.yaml', 'examples/compose/proxy.yaml']) {
    it(`loads ${example}`, () => {
      const config = loadProxyConfigFile(example, { env });
      assert.ok(config.routes.some((r) => r.approval) && config.routes.some((r) => r.block) && config.routes.some((r) => r.mask.length === 10));
    });
  }

  it('applies defaults', () => {
    const config = buildProxyConfig(minimal, { env });
    assert.equal(config.port, 8081);
    assert.equal(config.credential, 'secret');
    assert.deepEqual(config.record, { bodies: true, max_bytes: 65536, spool_dir: 'spool' });
    assert.equal(config.clock_skew, 30);
    assert.equal(config.upstreamAuthValue, undefined);
  });

  const bad: Array<[string, Record<string, unknown>, Record<string, string>, RegExp]> = [
    ['an unknown key', { ...minimal, upstreams: 'x' }, env, /upstreams: unknown key/],
    ['an unknown route key', { ...minimal, routes: [{ name: 'r', path: '/x', scope: ['a'] }] }, env, /routes\[0\]\.scope: unknown key/],
    ['no routes', { ...minimal, routes: [] }, env, /routes: at least one route/],
    ['a bad broker URL', { ...minimal, broker: 'ftp://x' }, env, /broker: must be an http\(s\) URL/],
    ['a path without /', { ...minimal, routes: [{ name: 'r', path: 'x' }] }, env, /routes\[0\]\.path/],
    ['** not last', { ...minimal, routes: [{ name: 'r', path: '/a/**/b' }] }, env, /\*\* may only be the last segment/],
    ['the reserved prefix', { ...minimal, routes: [{ name: 'r', path: '/_mintgate/x' }] }, env, /reserved/],
    ['an unknown mask type', { ...minimal, routes: [{ name: 'r', path: '/x', mask: ['email', 'dna'] }] }, env, /routes\[0\]\.mask\[1\]/],
    ['a bad model_scope', { ...minimal, routes: [{ name: 'r', path: '/x', model_scope: 'header.model' }] }, env, /model_scope/],
    ['a bad wait', { ...minimal, routes: [{ name: 'r', path: '/x', approval: { wait: 'soon' } }] }, env, /routes\[0\]\.approval\.wait/],
    ['a duplicate route name', { ...minimal, routes: [{ name: 'r', path: '/x' }, { name: 'r', path: '/y' }] }, env, /routes\[1\]\.name: "r" is used twice/],
    ['a blocked route with masking', { ...minimal, routes: [{ name: 'r', path: '/x', block: true, mask: ['email'] }] }, env, /routes\[0\]: a blocked route/],
    ['a pattern RE2 cannot run (backreference)', { ...minimal, block_requests: [{ where: 'body', pattern: '(a)\\1' }] }, env, /block_requests\[0\]\.pattern: not an RE2 pattern/],
    ['a pattern RE2 cannot run (lookahead)', { ...minimal, block_requests: [{ where: 'body', pattern: 'a(?=b)' }] }, env, /block_requests\[0\]\.pattern/],
    ['a bad where', { ...minimal, block_requests: [{ where: 'query', pattern: 'x' }] }, env, /block_requests\[0\]\.where/],
    ['no credential in the environment', minimal, {}, /credential_env: the variable MINTGATE_PROXY_TOKEN is not set/],
    ['no upstream secret in the environment', { ...minimal, upstream_auth: { header: 'authorization', value_env: 'NOPE' } }, env, /upstream_auth\.value_env: the variable NOPE is not set/],
  ];
  for (const [name, raw, e, message] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(() => buildProxyConfig(raw, { env: e }), (err: Error) => err instanceof ConfigError && message.test(err.message));
    });
  }

  it('refuses a file that is not YAML, or repeats a key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mintgate-proxy-config-'));
    writeFileSync(join(dir, 'a.yaml'), 'broker: [');
    assert.throws(() => loadProxyConfigFile(join(dir, 'a.yaml'), { env }), /not valid YAML/);
    writeFileSync(join(dir, 'b.yaml'), 'audience: a\naudience: b\n');
    assert.throws(() => loadProxyConfigFile(join(dir, 'b.yaml'), { env }), /not valid YAML/);
    assert.throws(() => loadProxyConfigFile(join(dir, 'missing.yaml'), { env }), /cannot read/);
  });
});
