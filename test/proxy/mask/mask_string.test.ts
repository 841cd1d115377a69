/**
 * MAYBE_SECRET, the pre-check that lets the maskers skip maskText: whatever it finds nothing in,
 * maskText must leave unchanged. Checked on the corpus and on random strings, so a detector
 * change in detectors.ts that finds secrets without these characters fails here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DETECTOR_TYPES } from '../../../src/proxy/mask/detectors.js';
import { MAYBE_SECRET, maskString } from '../../../src/proxy/mask/mask_string.js';
import { maskText } from '../../../src/proxy/mask/mask_text.js';
import type { MaskCounts } from '../../../src/proxy/mask/types.js';
import { loadCorpus } from './support.js';

describe('MAYBE_SECRET', () => {
  it('finds something in every corpus text that maskText changes', () => {
    for (const c of loadCorpus()) {
      if (maskText(c.text, DETECTOR_TYPES).text !== c.text) assert.ok(MAYBE_SECRET.test(c.text), c.id);
    }
  });

  it('every corpus secret, stripped of what the pre-check looks for, is left alone by maskText', () => {
    // The secrets' letters alone (no digits, `-`, `_`, `@`): what the pre-check lets through.
    for (const c of loadCorpus()) {
      const stripped = c.text.replace(/[0-9@_-]/g, ' ').replace(/eyJ|A(?:KIA|SIA|BIA|CCA)|bearer|authorization|hooks\.slack/gi, ' ');
      assert.ok(!MAYBE_SECRET.test(stripped), c.id);
      assert.equal(maskText(stripped, DETECTOR_TYPES).text, stripped, c.id);
    }
  });

  it('random strings it finds nothing in come back from maskText unchanged', () => {
    const alphabet = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ./:=+"\'\n\t,;!?()[]{}<>#$%&*~`|\\éü日'.split(''));
    const words = fc.constantFrom('Bearer', 'Authorization', 'token', 'secret', 'password', 'AKIA', 'eyJ', 'hooks.slack.com/', 'services/', 'Basic ', 'apikey', 'sk', 'ghp', 'xoxb', 'BEGIN', 'PRIVATE KEY');
    fc.assert(
      fc.property(fc.array(fc.oneof(alphabet, words), { maxLength: 120 }), (parts) => {
        const s = parts.join('');
        if (!MAYBE_SECRET.test(s)) assert.equal(maskText(s, DETECTOR_TYPES).text, s);
      }),
      { numRuns: 2000 },
    );
  });

  it('maskString counts what maskText replaced, and skips the scan without types', () => {
    const counts: MaskCounts = {};
    assert.equal(maskString('mail jane.doe@example.com or 4111 1111 1111 1111', DETECTOR_TYPES, counts), 'mail [MASKED:email] or [MASKED:credit_card]');
    assert.deepEqual(counts, { email: 1, credit_card: 1 });
    assert.equal(maskString('jane.doe@example.com', [], counts), 'jane.doe@example.com');
  });
});
