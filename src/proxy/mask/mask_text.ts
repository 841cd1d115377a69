import { DETECTOR_BY_TYPE, DETECTOR_TYPES, Prefilter, traitsOf, type Detector, type DetectorType, type Span } from './detectors.js';

/**
 * Specificity order, most specific first: where matches of several detectors overlap, the
 * label is the first of these types among them (CONTRACT §7). A private key holds base64 that
 * may look like anything; a JWT is the credential of a `Bearer` header; an AWS key or a
 * bearer/API credential is more specific than the digit runs that card, IBAN, SSN and phone
 * look for; a card (Luhn) or IBAN (mod 97) is checksummed, an SSN only range-checked; an email
 * is more specific than a phone-looking digit run.
 */
export const SPECIFICITY: readonly DetectorType[] = Object.freeze([
  'private_key',
  'jwt',
  'aws_access_key',
  'bearer_token',
  'api_key',
  'credit_card',
  'iban',
  'us_ssn',
  'email',
  'phone',
]);

const RANK: Readonly<Record<DetectorType, number>> = Object.freeze(
  Object.fromEntries(SPECIFICITY.map((t, i) => [t, i])) as Record<DetectorType, number>,
);

export interface MaskResult {
  text: string;
  /** Replacements made, by type (every type present, 0 when none). */
  counts: Record<DetectorType, number>;
}

const ZERO_COUNTS: Readonly<Record<DetectorType, number>> = Object.freeze(
  Object.fromEntries(DETECTOR_TYPES.map((t) => [t, 0])) as Record<DetectorType, number>,
);

/** A fresh all-zero tally (copying a template: callers masking small chunks call this often). */
function zeroCounts(): Record<DetectorType, number> {
  return { ...ZERO_COUNTS };
}

interface Labelled extends Span {
  type: DetectorType;
}

/**
 * Replace every match of the given detectors with `[MASKED:<type>]`. Overlapping matches are
 * merged into one replacement covering all of them (so no part of any match leaks), labelled
 * with the most specific type among them ({@link SPECIFICITY}); nothing is masked twice.
 *
 * The detectors try their regexes only at the candidate positions of a {@link Prefilter} (cheap
 * scans shared by all of them), and a short text skips outright every detector its
 * {@link traitsOf} rule out: the same result as {@link maskTextFullScan}, about three times
 * faster on model output with few secrets (bench/rows/60_mask_text.ts).
 */
export function maskText(text: string, types: readonly DetectorType[]): MaskResult {
  const counts = zeroCounts();
  return { text: maskFast(text, types, counts), counts };
}

/**
 * maskText as it was first written: every detector regex walks the whole text. The reference
 * the fast path is tested (and benchmarked) against; not for production use.
 */
export function maskTextFullScan(text: string, types: readonly DetectorType[]): MaskResult {
  const counts = zeroCounts();
  const found: Labelled[] = [];
  for (const detector of detectorsOf(types)) for (const s of detector.find(text)) if (s.end > s.start) found.push({ start: s.start, end: s.end, type: detector.type });
  return { text: replaceFound(text, found, counts), counts };
}

/**
 * `maskText(text, types).text`, adding the replacements to `counts` (only the types found):
 * what the maskers call for every string, so a clean one allocates next to nothing.
 */
export function maskFast(text: string, types: readonly DetectorType[], counts: Partial<Record<DetectorType, number>>): string {
  const detectors = detectorsOf(types);
  if (detectors.length === 0 || text.length === 0) return text;
  const traits = traitsOf(text);
  let pre: Prefilter | undefined;
  let found: Labelled[] | undefined;
  for (const detector of detectors) {
    if (!detector.possible(traits)) continue;
    pre ??= new Prefilter(text);
    for (const s of detector.find(text, pre)) if (s.end > s.start) (found ??= []).push({ start: s.start, end: s.end, type: detector.type });
  }
  return found === undefined ? text : replaceFound(text, found, counts);
}

/** The detectors of `types`, each once (remembered per array: a route's list is fixed). */
const DETECTORS_OF = new WeakMap<readonly DetectorType[], readonly Detector[]>();

function detectorsOf(types: readonly DetectorType[]): readonly Detector[] {
  let detectors = DETECTORS_OF.get(types);
  if (detectors === undefined) {
    detectors = [...new Set(types)].map((type) => {
      const detector = DETECTOR_BY_TYPE[type];
      if (detector === undefined) throw new TypeError(`unknown mask type: ${String(type)}`);
      return detector;
    });
    DETECTORS_OF.set(types, detectors);
  }
  return detectors;
}

/** `text` with the (possibly overlapping) spans found replaced by their labels, counted. */
function replaceFound(text: string, found: Labelled[], counts: Partial<Record<DetectorType, number>>): string {
  if (found.length === 0) return text;
  found.sort((a, b) => a.start - b.start || b.end - a.end);

  const merged: Labelled[] = [];
  for (const s of found) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.start < last.end) {
      last.end = Math.max(last.end, s.end);
      if (RANK[s.type] < RANK[last.type]) last.type = s.type;
    } else {
      merged.push(s);
    }
  }

  let out = '';
  let pos = 0;
  for (const s of merged) {
    out += `${text.slice(pos, s.start)}[MASKED:${s.type}]`;
    counts[s.type] = (counts[s.type] ?? 0) + 1;
    pos = s.end;
  }
  return out + text.slice(pos);
}
