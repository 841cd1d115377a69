/**
 * The masking corpus (/work/shared/corpus/masking, 711 cases from the presidio and gitleaks
 * test suites; see its README) run through maskText with all ten types. A `mask` case passes
 * when its secret is gone (for a PEM key: every body line of 16+ chars) and a `[MASKED:` label
 * is present; a `keep` case when the text comes back unchanged. Quality bar (README): recall
 * >= 0.95 and false-positive rate <= 0.05, overall and per family.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DETECTOR_TYPES } from '../../../src/proxy/mask/detectors.js';
import { maskText } from '../../../src/proxy/mask/mask_text.js';
import { loadCorpus, type Case } from './corpus_cases.js';

function passes(c: Case): boolean {
  const out = maskText(c.text, DETECTOR_TYPES).text;
  if (c.expected === 'keep') return out === c.text;
  const secret = c.secret ?? '';
  const parts = c.type === 'private_key' ? secret.split('\n').filter((l) => l.length >= 16) : [secret];
  return parts.every((p) => !out.includes(p)) && out.includes('[MASKED:');
}

interface Tally {
  mask: number;
  found: number;
  keep: number;
  falsePositives: number;
}

const rate = (n: number, d: number): number => (d === 0 ? Number.NaN : n / d);

describe('masking corpus', () => {
  const cases = loadCorpus();
  const tallies = new Map<string, Tally>();
  const failures: string[] = [];
  const tally = (key: string): Tally => {
    let t = tallies.get(key);
    if (t === undefined) tallies.set(key, (t = { mask: 0, found: 0, keep: 0, falsePositives: 0 }));
    return t;
  };
  for (const c of cases) {
    const ok = passes(c);
    for (const t of [tally('all'), tally(c.family ?? '(none)')]) {
      if (c.expected === 'mask') {
        t.mask++;
        if (ok) t.found++;
      } else {
        t.keep++;
        if (!ok) t.falsePositives++;
      }
    }
    if (!ok) failures.push(`${c.id} (${c.expected})`);
  }

  const rows = [...tallies.entries()].sort(([a], [b]) => (a === 'all' ? -1 : b === 'all' ? 1 : a.localeCompare(b)));
  console.log('family          recall (found/mask)   FP rate (fp/keep)');
  for (const [family, t] of rows) {
    const recall = rate(t.found, t.mask).toFixed(3);
    const fp = rate(t.falsePositives, t.keep).toFixed(3);
    console.log(`${family.padEnd(16)}${recall} (${t.found}/${t.mask})`.padEnd(38) + `${fp} (${t.falsePositives}/${t.keep})`);
  }
  if (failures.length > 0) console.log(`failing cases: ${failures.join(', ')}`);

  it('reads the whole corpus', () => {
    assert.equal(cases.length, 711);
  });

  for (const [family, t] of rows) {
    it(`${family}: recall >= 0.95 and false positives <= 0.05`, () => {
      if (t.mask > 0) assert.ok(t.found / t.mask >= 0.95, `recall ${t.found}/${t.mask}`);
      if (t.keep > 0) assert.ok(t.falsePositives / t.keep <= 0.05, `false positives ${t.falsePositives}/${t.keep}`);
    });
  }

  it('throughput on 1 MB of mixed text (printed, not asserted)', () => {
    const sample = cases.map((c) => c.text).join('\n') + '\nplain prose with numbers 12 345 and words. ';
    let text = '';
    while (text.length < 1 << 20) text += sample;
    text = text.slice(0, 1 << 20);
    maskText(text.slice(0, 4096), DETECTOR_TYPES); // warm up
    const t0 = process.hrtime.bigint();
    maskText(text, DETECTOR_TYPES);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`maskText: 1 MiB in ${ms.toFixed(1)} ms = ${(1000 / ms).toFixed(2)} MiB/s`);
  });
});
