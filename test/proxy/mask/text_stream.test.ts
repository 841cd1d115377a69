/**
 * The streaming text masker: for any split of any input into pieces, the concatenated output is
 * `maskText(whole).text` (inputs built from the corpus strings, prose and digit groups), the
 * counts are the whole text's, and what is held back stays bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DETECTOR_TYPES, type DetectorType } from '../../../src/proxy/mask/detectors.js';
import { maskText } from '../../../src/proxy/mask/mask_text.js';
import { textCodec, utf8Codec } from '../../../src/proxy/mask/content_type.js';
import { createTextMasker } from '../../../src/proxy/mask/text_masker.js';
import { MAX_HOLD, TextStreamMasker } from '../../../src/proxy/mask/text_stream.js';
import type { MaskCounts } from '../../../src/proxy/mask/types.js';
import { drive, loadCorpus, splitAt } from './support.js';

const ALL = DETECTOR_TYPES;

function streamed(pieces: string[], types: readonly DetectorType[] = ALL): { text: string; counts: MaskCounts; maxHeld: number } {
  const counts: MaskCounts = {};
  const m = new TextStreamMasker(types, counts);
  let text = '';
  let maxHeld = 0;
  for (const p of pieces) {
    text += m.write(p);
    maxHeld = Math.max(maxHeld, m.held);
  }
  return { text: text + m.end(), counts, maxHeld };
}

function whole(text: string, types: readonly DetectorType[] = ALL): { text: string; counts: MaskCounts } {
  const r = maskText(text, types);
  const counts: MaskCounts = {};
  for (const [k, v] of Object.entries(r.counts)) if (v > 0) counts[k as DetectorType] = v;
  return { text: r.text, counts };
}

/** The text cut at the given positions. */
function cut(text: string, positions: number[]): string[] {
  const points = [...new Set(positions.map((p) => p % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const p of [...points, text.length]) {
    out.push(text.slice(prev, p));
    prev = p;
  }
  return out;
}

const corpusTexts = [...new Set(loadCorpus().map((c) => c.text))];
const PROSE = ['the', 'model', 'said', 'hello', 'and', 'then', 'wrote', 'to', 'us', 'about', 'API', 'tokens', 'secret', 'password', 'Bearer', 'auth', 'key:', '=', '"', "'", ':', ',', '-', '-----', 'card', 'number', 'IBAN', 'call', 'me', 'at', 'é', 'ü', '日本', '😀'];
const DIGITS = ['4111', '1111', '4012', '8888', '1881', '555', '123', '4567', '078', '05', '1120', '+1', '(555)', '0', '90', 'DE89', '3704', '0044', '0532', '0130', '00', 'GB82', 'WEST', '1234', '5698', '7654', '32'];
const SEPARATORS = [' ', ' ', ' ', '\n', '  ', '\t', ', ', '. ', '\r\n', ''];

/** Inputs built from corpus strings, prose words and digit groups, joined by blanks and newlines. */
const inputs = fc
  .array(
    fc.tuple(
      fc.oneof(
        { weight: 2, arbitrary: fc.constantFrom(...corpusTexts) },
        { weight: 3, arbitrary: fc.constantFrom(...PROSE) },
        { weight: 3, arbitrary: fc.constantFrom(...DIGITS) },
        { weight: 1, arbitrary: fc.stringMatching(/^[0-9]{1,20}$/) },
      ),
      fc.constantFrom(...SEPARATORS),
    ),
    { minLength: 1, maxLength: 24 },
  )
  .map((parts) => parts.map(([a, b]) => a + b).join(''));

describe('text stream masker', () => {
  it('any split of corpus-built text gives exactly maskText(whole), counts included', () => {
    fc.assert(
      fc.property(inputs, fc.array(fc.nat(), { maxLength: 40 }), (text, positions) => {
        const expected = whole(text);
        const got = streamed(cut(text, positions));
        assert.equal(got.text, expected.text);
        assert.deepEqual(got.counts, expected.counts);
      }),
      { numRuns: 400 },
    );
  });

  it('char-by-char writes of every corpus text give exactly maskText(whole)', () => {
    for (const text of corpusTexts) {
      const got = streamed([...text]);
      assert.equal(got.text, whole(text).text, text.slice(0, 80));
    }
  });

  it('a subset of the types streams as exactly as all of them', () => {
    fc.assert(
      fc.property(inputs, fc.array(fc.nat(), { maxLength: 20 }), fc.subarray([...ALL], { minLength: 1 }), (text, positions, types) => {
        assert.equal(streamed(cut(text, positions), types).text, whole(text, types).text);
      }),
      { numRuns: 150 },
    );
  });

  it('holds back at most the growing token of prose without digits or key words', () => {
    const prose = 'the quick brown fox jumps over the lazy dog while everyone watches quietly from afar '.repeat(20);
    const counts: MaskCounts = {};
    const m = new TextStreamMasker(ALL, counts);
    let out = '';
    let written = '';
    for (const piece of cut(prose, Array.from({ length: 300 }, (_, i) => i * 7 + (i % 5)))) {
      out += m.write(piece);
      written += piece;
      // Everything up to the last whitespace is out; only the token that may still grow is held.
      const lastSpace = written.lastIndexOf(' ');
      assert.equal(out, written.slice(0, lastSpace + 1));
      assert.ok(m.held <= written.length - lastSpace - 1);
    }
    assert.equal(out + m.end(), prose);
  });

  it('holds a digit group until 96 chars without a trigger follow it, then releases it masked', () => {
    const counts: MaskCounts = {};
    const m = new TextStreamMasker(ALL, counts);
    const outs = ['pay with 4111 ', '1111 ', '1111 ', `1111 and nothing else follows here for quite a while, just words and more words, long enough to pass the window`].map((p) => m.write(p));
    assert.deepEqual(outs.slice(0, 3), ['pay with ', '', '']);
    assert.match(outs[3]!, /^\[MASKED:credit_card\] and nothing/);
    assert.equal(outs.join('') + m.end(), 'pay with [MASKED:credit_card] and nothing else follows here for quite a while, just words and more words, long enough to pass the window');
    assert.deepEqual(counts, { credit_card: 1 });
  });

  it('a Bearer credential written after its keyword, in pieces, is masked', () => {
    const got = streamed(['Authorization: ', 'Bearer ', 'abcdefghij', 'klmnopqrstuvwxyz', ' and more']);
    assert.equal(got.text, 'Authorization: Bearer [MASKED:bearer_token] and more');
  });

  it('a key word and its value apart by up to 80 blanks, cut anywhere, stream exactly (the documented corner lies beyond)', () => {
    for (const n of [0, 1, 10, 40, 80]) {
      const text = `config password:${' '.repeat(n)}hunter22abc and then more`;
      for (let cut = 1; cut < text.length; cut++) assert.equal(streamed([text.slice(0, cut), text.slice(cut)]).text, whole(text).text, `${n} blanks, cut at ${cut}`);
    }
  });

  it('a PEM key split across pieces is masked whole', () => {
    const key = loadCorpus().find((c) => c.type === 'private_key' && c.expected === 'mask')!;
    const text = `here is the key:\n${key.text}\nkeep it safe`;
    const got = streamed(cut(text, Array.from({ length: 60 }, (_, i) => i * 37)));
    assert.equal(got.text, whole(text).text);
    assert.match(got.text, /\[MASKED:private_key\]/);
  });

  it('more than MAX_HOLD chars in one token are released in halves, nothing lost', () => {
    const token = 'x'.repeat(MAX_HOLD * 2 + 10);
    const counts: MaskCounts = {};
    const m = new TextStreamMasker(ALL, counts);
    let out = '';
    let maxHeld = 0;
    for (let i = 0; i < token.length; i += 4096) {
      out += m.write(token.slice(i, i + 4096));
      maxHeld = Math.max(maxHeld, m.held);
    }
    assert.ok(maxHeld <= MAX_HOLD + 4096, `held ${maxHeld}`);
    assert.equal(out + m.end(), token);
  });

  it('no types: every piece passes as it came', () => {
    const m = new TextStreamMasker([], {});
    assert.equal(m.write('mail jane.doe@example.com'), 'mail jane.doe@example.com');
  });
});

describe('text body masker (bytes)', () => {
  it('a multi-byte character split across chunks comes out whole', () => {
    const text = 'caf\u00e9 \u65e5\u672c\u8a9e \ud83d\ude00 mail jane.doe@example.com now';
    const bytes = Buffer.from(text, 'utf8');
    for (let i = 1; i < bytes.length; i++) {
      const out = drive(createTextMasker({ types: ALL, fields: [] }, utf8Codec()), splitAt(bytes, [i, i + 1, i + 2])).text;
      assert.equal(out, 'caf\u00e9 \u65e5\u672c\u8a9e \ud83d\ude00 mail [MASKED:email] now');
    }
  });

  it('any byte split of corpus-built text gives exactly maskText(whole)', () => {
    fc.assert(
      fc.property(inputs, fc.array(fc.nat(), { maxLength: 30 }), (text, positions) => {
        const bytes = Buffer.from(text, 'utf8');
        const out = drive(createTextMasker({ types: ALL, fields: [] }, utf8Codec()), splitAt(bytes, positions.map((p) => p % (bytes.length + 1)))).text;
        // A lone surrogate (none in these inputs) would become U+FFFD either way.
        assert.equal(out, maskText(text, ALL).text);
      }),
      { numRuns: 200 },
    );
  });

  it('a Latin-1 body keeps every byte that is not part of a secret', () => {
    const bytes = Buffer.concat([Buffer.from([0xe9, 0x20]), Buffer.from('mail jane.doe@example.com '), Buffer.from([0xff, 0xfe])]);
    const m = createTextMasker({ types: ALL, fields: [] }, textCodec('iso-8859-1'));
    const out = Buffer.concat([m.write(bytes.subarray(0, 9)), m.write(bytes.subarray(9)), m.end()]);
    assert.deepEqual(out, Buffer.concat([Buffer.from([0xe9, 0x20]), Buffer.from('mail [MASKED:email] '), Buffer.from([0xff, 0xfe])]));
  });

  it('a UTF-16 body is masked (ASCII secrets do not hide between zero bytes)', () => {
    for (const charset of ['utf-16le', 'utf-16be']) {
      const le = Buffer.from('mail jane.doe@example.com now', 'utf16le');
      const bytes = charset === 'utf-16le' ? le : Buffer.from(le).swap16();
      const m = createTextMasker({ types: ALL, fields: [] }, textCodec(charset));
      const out = Buffer.concat([m.write(bytes.subarray(0, 7)), m.write(bytes.subarray(7)), m.end()]);
      const back = charset === 'utf-16le' ? out : Buffer.from(out).swap16();
      assert.equal(back.toString('utf16le'), 'mail [MASKED:email] now', charset);
    }
  });
});
