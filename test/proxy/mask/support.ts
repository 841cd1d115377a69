/**
 * Shared by the masker tests: the masking corpus (/work/shared/corpus/masking, see its README;
 * corpus.test.ts reads it the same way but exports nothing) and helpers to drive a BodyMasker.
 */
import { readFileSync } from 'node:fs';
import type { BodyMasker } from '../../../src/proxy/mask/index.js';

export const CORPUS_PATH = process.env.MINTGATE_MASK_CORPUS ?? '/work/shared/corpus/masking/cases.jsonl';

export interface CorpusCase {
  id: string;
  text: string;
  secret: string | null;
  type: string | null;
  expected: 'mask' | 'keep';
  family: string | null;
}

let cached: CorpusCase[] | undefined;

export function loadCorpus(): CorpusCase[] {
  cached ??= readFileSync(CORPUS_PATH, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as CorpusCase);
  return cached;
}

/**
 * The corpus README's verdict on a masked text: a `mask` case passes when its secret is gone
 * (for a PEM key, every body line of 16+ chars) and a `[MASKED:` label is there; a `keep` case
 * when `out` is the text unchanged (`original` when the text was carried in another form).
 */
export function passes(c: CorpusCase, out: string, original: string = c.text): boolean {
  if (c.expected === 'keep') return out === original;
  const secret = c.secret ?? '';
  const parts = c.type === 'private_key' ? secret.split('\n').filter((l) => l.length >= 16) : [secret];
  return parts.every((p) => !out.includes(p)) && out.includes('[MASKED:');
}

/** Writes the pieces through the masker; returns each write's output and the end's, as text. */
export function drive(masker: BodyMasker, pieces: Array<Uint8Array | string>): { outputs: string[]; text: string } {
  const bytes: Uint8Array[] = [];
  for (const p of pieces) bytes.push(masker.write(typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
  bytes.push(masker.end());
  const outputs = bytes.map((b) => Buffer.from(b).toString('utf8'));
  return { outputs, text: Buffer.concat(bytes.map((b) => Buffer.from(b))).toString('utf8') };
}

/** `bytes` cut at the given positions (sorted, deduplicated, clipped). */
export function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.max(0, Math.min(bytes.length, c))))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

/** A text cut into pieces of at most `size` chars. */
export function pieces(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}
