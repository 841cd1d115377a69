/**
 * The masking corpus (/work/shared/corpus/masking/cases.jsonl, or MINTGATE_MASK_CORPUS), one
 * case per line; read by the corpus test and by the fast-path equivalence test.
 */
import { readFileSync } from 'node:fs';

export const CORPUS = process.env.MINTGATE_MASK_CORPUS ?? '/work/shared/corpus/masking/cases.jsonl';

export interface Case {
  id: string;
  text: string;
  secret: string | null;
  type: string | null;
  expected: 'mask' | 'keep';
  family: string | null;
}

export function loadCorpus(path = CORPUS): Case[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Case);
}
