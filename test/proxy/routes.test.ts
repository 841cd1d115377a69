/** The route table and path normalisation (CONTRACT section 7: exact, `*`, `**`; first match wins). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { normalizePath, RouteTable, UnsafePath } from '../../src/proxy/routes.js';

const route = (name: string, path: string, method?: string) => ({ name, path, ...(method ? { method } : {}), scopes: [], mask: [], mask_fields: [], block: false });

describe('route table', () => {
  const table = new RouteTable([
    route('chat', '/v1/chat/completions', 'POST'),
    route('export', '/v1/models/*/export', 'POST'),
    route('model', '/v1/models/*'),
    route('secrets', '/secrets/**'),
    route('root-any', '/files/**', 'GET'),
  ]);
  const cases: Array<[string, string, string | undefined]> = [
    ['POST', '/v1/chat/completions', 'chat'],
    ['GET', '/v1/chat/completions', undefined],
    ['POST', '/v1/chat/completions/', undefined],
    ['POST', '/v1/chat', undefined],
    ['POST', '/v1/models/llama/export', 'export'],
    ['POST', '/v1/models//export', undefined],
    ['GET', '/v1/models/llama/export', undefined],
    ['GET', '/v1/models/llama', 'model'],
    ['DELETE', '/v1/models/llama', 'model'],
    ['GET', '/v1/models', undefined],
    ['GET', '/v1/models/', undefined],
    ['GET', '/secrets', 'secrets'],
    ['GET', '/secrets/', 'secrets'],
    ['PUT', '/secrets/a/b/c', 'secrets'],
    ['GET', '/secretsx', undefined],
    ['GET', '/files/a', 'root-any'],
    ['POST', '/files/a', undefined],
    ['GET', '/', undefined],
  ];
  for (const [method, path, expected] of cases) {
    it(`${method} ${path} -> ${expected ?? 'no route'}`, () => {
      assert.equal(table.match(method, path)?.name, expected);
    });
  }

  it('first match wins', () => {
    const t = new RouteTable([route('a', '/x/*'), route('b', '/x/y')]);
    assert.equal(t.match('GET', '/x/y')?.name, 'a');
  });
});

describe('normalizePath', () => {
  const cases: Array<[string, string]> = [
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a/./b', '/a/b'],
    ['/a/../b', '/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/v1/%2e%2e/secrets', '/secrets'],
    ['/v1/%2E./secrets', '/secrets'],
    ['/v1/%61bc', '/v1/abc'],
    ['/v1/a%20b', '/v1/a%20b'],
    ['/v1/%7e', '/v1/~'],
  ];
  for (const [raw, normal] of cases) it(`${raw} -> ${normal}`, () => assert.equal(normalizePath(raw), normal));

  for (const raw of ['/a%2fb', '/a%2F..%2Fb', '/a%5cb', '/a\\b', '/a%00', '/a%zz', '/a%2', 'a/b']) {
    it(`refuses ${raw}`, () => assert.throws(() => normalizePath(raw), UnsafePath));
  }

  it('is idempotent and never leaves a dot segment (property)', () => {
    const segment = fc.oneof(fc.constantFrom('.', '..', '%2e', '%2E%2e', '', 'a', 'b', 'secrets'), fc.stringMatching(/^[a-z0-9_-]{1,5}$/));
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), (segments) => {
        const once = normalizePath(`/${segments.join('/')}`);
        assert.equal(normalizePath(once), once);
        assert.ok(!once.split('/').some((s) => s === '.' || s === '..'), once);
      }),
    );
  });
});
