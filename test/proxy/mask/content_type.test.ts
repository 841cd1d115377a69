/** Which masker a Content-Type gets (null: passed through untouched). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DETECTOR_TYPES } from '../../../src/proxy/mask/detectors.js';
import { classifyContentType } from '../../../src/proxy/mask/content_type.js';
import { createBodyMasker, isMaskType } from '../../../src/proxy/mask/index.js';
import { drive } from './support.js';

const POLICY = { types: DETECTOR_TYPES, fields: ['password'] };

describe('content types', () => {
  const table: Array<[string | undefined, 'json' | 'sse' | 'text' | null]> = [
    ['application/json', 'json'],
    ['Application/JSON; charset=UTF-8', 'json'],
    ['application/problem+json', 'json'],
    ['application/vnd.api+json', 'json'],
    ['text/event-stream', 'sse'],
    ['text/event-stream;charset=utf-8', 'sse'],
    ['text/plain', 'text'],
    ['text/html; charset=iso-8859-1', 'text'],
    ['text/markdown', 'text'],
    ['application/x-ndjson', 'text'],
    ['application/xml', 'text'],
    ['application/atom+xml', 'text'],
    ['application/x-www-form-urlencoded', 'text'],
    [undefined, 'text'],
    ['', 'text'],
    ['image/png', null],
    ['application/octet-stream', null],
    ['audio/mpeg', null],
    ['application/pdf', null],
    ['application/jsonx', null],
    ['multipart/form-data; boundary=x', null],
  ];
  for (const [header, kind] of table) {
    it(`${String(header)} -> ${String(kind)}`, () => {
      assert.equal(classifyContentType(header)?.kind ?? null, kind);
      const masker = createBodyMasker(POLICY, header);
      assert.equal(masker === null, kind === null);
    });
  }

  it('reads the charset parameter, quoted or not', () => {
    assert.equal(classifyContentType('text/plain; charset="ISO-8859-1"')?.charset, 'iso-8859-1');
    assert.equal(classifyContentType('text/plain;format=flowed; charset=utf-16le')?.charset, 'utf-16le');
  });

  it('a missing Content-Type is masked as text', () => {
    assert.equal(drive(createBodyMasker(POLICY, undefined)!, ['mail jane.doe@example.com']).text, 'mail [MASKED:email]');
  });

  it('a policy that masks nothing passes text bodies through as they came', () => {
    const masker = createBodyMasker({ types: [], fields: [] }, 'application/json')!;
    const body = Buffer.from('{"password": "x", "mail": "jane.doe@example.com"}');
    assert.equal(Buffer.from(masker.write(body)).toString(), body.toString());
    assert.equal(masker.end().length, 0);
    assert.deepEqual(masker.counts, {});
  });

  it('isMaskType knows the ten contract types and nothing else', () => {
    for (const t of DETECTOR_TYPES) assert.ok(isMaskType(t));
    for (const t of ['field', 'password', '', 'EMAIL']) assert.ok(!isMaskType(t));
  });
});
