/** Utf8Stream: UTF-8 decoded in pieces, a character split anywhere included. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Utf8Stream } from '../../../src/proxy/mask/utf8_stream.js';
import { splitAt } from './support.js';

function decodeAll(pieces: Uint8Array[]): string {
  const d = new Utf8Stream();
  return pieces.map((p) => d.decode(p)).join('') + d.decode(new Uint8Array(0), true);
}

describe('Utf8Stream', () => {
  it('any split of well-formed UTF-8 decodes to the same text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.array(fc.nat(), { maxLength: 12 }), (text, cuts) => {
        const bytes = Buffer.from(text, 'utf8');
        assert.equal(decodeAll(splitAt(bytes, cuts.map((c) => c % (bytes.length + 1)))), text);
      }),
      { numRuns: 500 },
    );
  });

  it('malformed bytes become U+FFFD, as in one piece; an unfinished character at the end too', () => {
    const bad = Buffer.from([0x61, 0xff, 0x62, 0xe6, 0x97, 0x63]);
    assert.equal(decodeAll([bad]), Buffer.from(bad).toString('utf8'));
    assert.equal(decodeAll([Buffer.from([0x61, 0xe6, 0x97])]), 'a\ufffd');
  });
});
