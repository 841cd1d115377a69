/**
 * JSON bodies: mask_fields (nested, case-insensitive, any value type), detectors on every string
 * and key, numbers that hold a secret, and the fallbacks to streaming text (not JSON, too large,
 * nested too deep).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DETECTOR_TYPES } from '../../../src/proxy/mask/detectors.js';
import { createBodyMasker, type MaskPolicy } from '../../../src/proxy/mask/index.js';
import { createJsonMasker } from '../../../src/proxy/mask/json_masker.js';
import { maskText } from '../../../src/proxy/mask/mask_text.js';
import { drive, pieces } from './support.js';

const POLICY: MaskPolicy = { types: DETECTOR_TYPES, fields: ['password', 'API_KEY', 'secret'] };

function maskJson(value: unknown, policy = POLICY, contentType = 'application/json') {
  const masker = createBodyMasker(policy, contentType)!;
  const { outputs, text } = drive(masker, pieces(JSON.stringify(value), 7));
  return { outputs, value: JSON.parse(text) as unknown, text, counts: masker.counts };
}

describe('JSON body masker', () => {
  it('mask_fields: nested, case-insensitive, whatever the value holds', () => {
    const { value, counts } = maskJson({
      user: { Password: 'hunter2', profile: { api_key: 42, nested: [{ SECRET: { a: 1, b: ['x'] } }, { secret: null }, { secret: true }] } },
      passwords: 'not a field (another key)',
      list: [{ password: ['a', 'b'] }],
    });
    assert.deepEqual(value, {
      user: { Password: '[MASKED:field]', profile: { api_key: '[MASKED:field]', nested: [{ SECRET: '[MASKED:field]' }, { secret: '[MASKED:field]' }, { secret: '[MASKED:field]' }] } },
      passwords: 'not a field (another key)',
      list: [{ password: '[MASKED:field]' }],
    });
    assert.deepEqual(counts, { field: 6 });
  });

  it('every other string and every key goes through the detectors; the body is held until it ends', () => {
    const body = {
      choices: [{ message: { content: 'Mail jane.doe@example.com, card 4111 1111 1111 1111.' } }],
      'jane.doe@example.com': 'a key that is an email',
      n: 1.5,
      ok: true,
      none: null,
    };
    const { outputs, value, counts } = maskJson(body);
    assert.ok(outputs.slice(0, -1).every((o) => o === ''), 'nothing leaves before the body is complete');
    assert.deepEqual(value, {
      choices: [{ message: { content: 'Mail [MASKED:email], card [MASKED:credit_card].' } }],
      '[MASKED:email]': 'a key that is an email',
      n: 1.5,
      ok: true,
      none: null,
    });
    assert.deepEqual(counts, { email: 2, credit_card: 1 });
  });

  it('a card or SSN sent as a JSON number is masked too; other numbers stay numbers', () => {
    const { value, counts } = maskJson({ card: 4111111111111111, created: 1700000000, tokens: 12, price: 3.25 });
    assert.deepEqual(value, { card: '[MASKED:credit_card]', created: 1700000000, tokens: 12, price: 3.25 });
    assert.deepEqual(counts, { credit_card: 1 });
  });

  it('fields only, no types: parsed and walked, strings left as they are', () => {
    const { value, counts } = maskJson({ password: 'x', mail: 'jane.doe@example.com' }, { types: [], fields: ['password'] });
    assert.deepEqual(value, { password: '[MASKED:field]', mail: 'jane.doe@example.com' });
    assert.deepEqual(counts, { field: 1 });
  });

  it('fields only: a body that names none of them leaves as it came, unparsed; any spelling of one is still found', () => {
    const policy: MaskPolicy = { types: [], fields: ['password', 'Token'] };
    const raw = '{ "mail" :  "jane.doe@example.com",\n  "n": 1.50 }';
    assert.equal(drive(createBodyMasker(policy, 'application/json')!, pieces(raw, 5)).text, raw);
    const spellings = ['{"PassWord":"x"}', '{"pass\\u0077ord":"x"}', '{"TOKEN":"x"}', '{"to\u212Aen":"x"}', '{"a":{"b":[{"token":"x"}]}}'];
    for (const body of spellings) {
      const masker = createBodyMasker(policy, 'application/json')!;
      const { text } = drive(masker, pieces(body, 3));
      assert.ok(text.includes('[MASKED:field]'), `${body} -> ${text}`);
      assert.deepEqual(masker.counts, { field: 1 }, body);
    }
  });

  it('application/problem+json and other +json types are JSON', () => {
    assert.deepEqual(maskJson({ password: 'x' }, POLICY, 'application/problem+json; charset=utf-8').value, { password: '[MASKED:field]' });
  });

  it('duplicate keys collapse as JSON.parse reads them; a __proto__ key stays a plain key', () => {
    const masker = createJsonMasker(POLICY);
    const { text } = drive(masker, ['{"a":"jane.doe@example.com","a":"x","__proto__":{"password":"p"}}']);
    assert.equal(text, '{"a":"x","__proto__":{"password":"[MASKED:field]"}}');
  });

  it('not JSON: masked as text over the raw bytes', () => {
    const raw = '{"broken": "mail jane.doe@example.com", ';
    const masker = createBodyMasker(POLICY, 'application/json')!;
    assert.equal(drive(masker, pieces(raw, 5)).text, maskText(raw, DETECTOR_TYPES).text);
    assert.deepEqual(masker.counts, { email: 1 });
  });

  it('larger than the buffer limit: streamed as text from there on, nothing lost', () => {
    const body = JSON.stringify({ content: `${'word '.repeat(40)}mail jane.doe@example.com ${'more '.repeat(40)}` });
    const masker = createJsonMasker(POLICY, 64);
    const { outputs, text } = drive(masker, pieces(body, 16));
    assert.equal(text, maskText(body, DETECTOR_TYPES).text);
    assert.ok(outputs.slice(0, -1).some((o) => o !== ''), 'text leaves before the end once over the limit');
  });

  it('nested deeper than the stack: masked as text, not thrown', () => {
    const depth = 200_000;
    const body = `${'['.repeat(depth)}"jane.doe@example.com"${']'.repeat(depth)}`;
    const masker = createJsonMasker(POLICY);
    const { text } = drive(masker, [body]);
    assert.ok(!text.includes('jane.doe@example.com'));
    assert.equal(text.length, body.length - 'jane.doe@example.com'.length + '[MASKED:email]'.length);
  });

  it('an empty body stays empty', () => {
    assert.equal(drive(createJsonMasker(POLICY), []).text, '');
  });
});
