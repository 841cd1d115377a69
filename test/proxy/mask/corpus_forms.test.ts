/**
 * The masking corpus (/work/shared/corpus/masking, see its README) measured end to end through
 * createBodyMasker, in the three forms an answer takes:
 *   (a) a JSON body `{"content": text}`;
 *   (b) a text/plain body written in small chunks (1-16 bytes, varied per case);
 *   (c) an OpenAI-style event stream, the text split across 3-6 content events at varied
 *       points (after a role event; then a finish chunk and `data: [DONE]`), the stream's bytes
 *       written in chunks of 1-97 bytes.
 * Quality bar (README): recall >= 0.95 and false positives <= 0.05 in every form, overall and
 * per family; and each case's verdict in every form equals its verdict on maskText(whole) (the
 * streaming maskers are exact, so the masked text itself is compared too).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DETECTOR_TYPES } from '../../../src/proxy/mask/detectors.js';
import { createBodyMasker, type MaskPolicy } from '../../../src/proxy/mask/index.js';
import { maskText } from '../../../src/proxy/mask/mask_text.js';
import { drive, loadCorpus, passes, splitAt, type CorpusCase } from './support.js';

/** The contract's example route (CONTRACT §7). */
const POLICY: MaskPolicy = { types: DETECTOR_TYPES, fields: ['password', 'api_key', 'secret', 'token'] };

/** A small deterministic PRNG (mulberry32) seeded per case, so failures reproduce. */
function prng(seed: string): () => number {
  let a = 0;
  for (const ch of seed) a = (Math.imul(a, 31) + ch.charCodeAt(0)) | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function chunkSizes(bytes: Uint8Array, rand: () => number, max: number): Uint8Array[] {
  const cuts: number[] = [];
  for (let i = 0; i < bytes.length; ) cuts.push((i += 1 + Math.floor(rand() * max)));
  return splitAt(bytes, cuts);
}

function asJson(c: CorpusCase): string {
  const masker = createBodyMasker(POLICY, 'application/json')!;
  const { text } = drive(masker, [Buffer.from(JSON.stringify({ content: c.text }))]);
  return (JSON.parse(text) as { content: string }).content;
}

function asText(c: CorpusCase): string {
  const rand = prng(`text:${c.id}`);
  const masker = createBodyMasker(POLICY, 'text/plain; charset=utf-8')!;
  return drive(masker, chunkSizes(Buffer.from(c.text, 'utf8'), rand, 16)).text;
}

function asStream(c: CorpusCase): string {
  const rand = prng(`sse:${c.id}`);
  const events = 3 + Math.floor(rand() * 4);
  const points = new Set<number>();
  while (points.size < Math.min(events - 1, Math.max(0, c.text.length - 1))) points.add(1 + Math.floor(rand() * (c.text.length - 1)));
  const cuts = [0, ...[...points].sort((a, b) => a - b), c.text.length];
  const base = { id: `chatcmpl-${c.id}`, object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', system_fingerprint: 'fp_44709d6fcb' };
  const event = (choice: Record<string, unknown>) => `data: ${JSON.stringify({ ...base, choices: [{ index: 0, ...choice }] })}\n\n`;
  let stream = event({ delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null });
  for (let i = 0; i + 1 < cuts.length; i++) stream += event({ delta: { content: c.text.slice(cuts[i], cuts[i + 1]) }, logprobs: null, finish_reason: null });
  stream += event({ delta: {}, logprobs: null, finish_reason: 'stop' }) + 'data: [DONE]\n\n';

  const masker = createBodyMasker(POLICY, 'text/event-stream')!;
  const out = drive(masker, chunkSizes(Buffer.from(stream, 'utf8'), rand, 97)).text;
  const frames = out.split('\n\n');
  assert.equal(frames.pop(), '', `${c.id}: the stream ends with a blank line`);
  assert.equal(frames.pop(), 'data: [DONE]', `${c.id}: [DONE] last`);
  let content = '';
  for (const f of frames) {
    assert.ok(f.startsWith('data: {'), `${c.id}: every event is data: <json>`);
    const chunk = JSON.parse(f.slice(6)) as { choices: Array<{ delta?: { content?: string } }> };
    content += chunk.choices[0]?.delta?.content ?? '';
  }
  return content;
}

interface Tally {
  mask: number;
  found: number;
  keep: number;
  falsePositives: number;
}

const FORMS: Array<[string, (c: CorpusCase) => string]> = [
  ['json', asJson],
  ['text', asText],
  ['sse', asStream],
];

describe('masking corpus through the body maskers (JSON, text, SSE)', () => {
  const cases = loadCorpus();

  it('reads the whole corpus', () => {
    assert.equal(cases.length, 711);
  });

  for (const [form, mask] of FORMS) {
    describe(form, () => {
      const tallies = new Map<string, Tally>();
      const tally = (key: string): Tally => {
        let t = tallies.get(key);
        if (t === undefined) tallies.set(key, (t = { mask: 0, found: 0, keep: 0, falsePositives: 0 }));
        return t;
      };
      const differs: string[] = [];
      const inexact: string[] = [];
      for (const c of cases) {
        const whole = maskText(c.text, DETECTOR_TYPES).text;
        const out = mask(c);
        const ok = passes(c, out);
        if (ok !== passes(c, whole)) differs.push(c.id);
        if (out !== whole) inexact.push(c.id);
        for (const t of [tally('all'), tally(c.family ?? '(none)')]) {
          if (c.expected === 'mask') {
            t.mask++;
            if (ok) t.found++;
          } else {
            t.keep++;
            if (!ok) t.falsePositives++;
          }
        }
      }
      const rows = [...tallies.entries()].sort(([a], [b]) => (a === 'all' ? -1 : b === 'all' ? 1 : a.localeCompare(b)));
      console.log(`[${form}] family          recall (found/mask)   FP rate (fp/keep)`);
      for (const [family, t] of rows) {
        const recall = t.mask === 0 ? 'n/a' : (t.found / t.mask).toFixed(3);
        const fp = t.keep === 0 ? 'n/a' : (t.falsePositives / t.keep).toFixed(3);
        console.log(`[${form}] ${family.padEnd(16)}${`${recall} (${t.found}/${t.mask})`.padEnd(22)}${fp} (${t.falsePositives}/${t.keep})`);
      }

      for (const [family, t] of rows) {
        it(`${family}: recall >= 0.95 and false positives <= 0.05`, () => {
          if (t.mask > 0) assert.ok(t.found / t.mask >= 0.95, `recall ${t.found}/${t.mask}`);
          if (t.keep > 0) assert.ok(t.falsePositives / t.keep <= 0.05, `false positives ${t.falsePositives}/${t.keep}`);
        });
      }

      it('every case gets the verdict of maskText on the whole text, and the same masked text', () => {
        assert.deepEqual(differs, []);
        assert.deepEqual(inexact, []);
      });
    });
  }
});
