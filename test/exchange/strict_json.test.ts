/** The duplicate-key and depth scan over JOSE headers and claim sets (SPEC.md 4, "duplicate claims"). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseStrictJson, StrictJsonError } from '../../src/exchange/assertions/strict_json.js';

describe('parseStrictJson', () => {
  const accepted = [
    '{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}',
    '{"s":"{\\"a\\":1,\\"a\\":2}"}',
    '{"a":"x,\\"y\\":","b":"\\\\"}',
    '{"a\\\\":1,"a":2}',
    '{"":1,"a":[],"b":{}}',
    '[{"a":1},{"a":1}]',
  ];
  for (const text of accepted) {
    it(`accepts ${text}`, () => assert.deepEqual(parseStrictJson(text), JSON.parse(text)));
  }
  const refused = [
    '{"sub":"a","sub":"admin"}',
    '{"s\\u0075b":"a","sub":"admin"}',
    '{"x":{"a":1,"a":2}}',
    '[{"a":1,"b":"{","a":2}]',
    '{"a":"\\\\","a":1}',
  ];
  for (const text of refused) {
    it(`refuses ${text}`, () => assert.throws(() => parseStrictJson(text), StrictJsonError));
  }
  it('refuses nesting deeper than the limit', () => {
    assert.throws(() => parseStrictJson('['.repeat(17) + ']'.repeat(17)), /deeper/);
    assert.doesNotThrow(() => parseStrictJson('['.repeat(16) + ']'.repeat(16)));
  });
  it('agrees with JSON.parse on every JSON value without duplicate keys', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const text = JSON.stringify(value);
        assert.deepEqual(parseStrictJson(text, 64), JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });
});
