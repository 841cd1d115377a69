import { IBAN_LENGTHS } from './iban_lengths.js';

/** The contract's detector names (CONTRACT §7), in no particular order. */
export const DETECTOR_TYPES = [
  'email',
  'credit_card',
  'us_ssn',
  'aws_access_key',
  'private_key',
  'jwt',
  'bearer_token',
  'api_key',
  'iban',
  'phone',
] as const;

export type DetectorType = (typeof DETECTOR_TYPES)[number];

/** A half-open span `[start, end)` of UTF-16 code units in the scanned text. */
export interface Span {
  start: number;
  end: number;
}

/**
 * One detector. Every regex in here uses bounded quantifiers only, so a scan is linear in the
 * text length (times a small constant), whatever an untrusted upstream sends.
 */
export interface Detector {
  type: DetectorType;
  /**
   * The longest match this detector can produce, in chars (UTF-16 code units). A streaming
   * masker must hold back this many chars (plus a little context) before releasing output.
   */
  window: number;
  /**
   * All matches in `text`, as spans of the secret itself (not the surrounding key name). With
   * `pre` (a {@link Prefilter} of this same `text`) the regexes are tried only where its cheap
   * scans found a possible start: the same spans, found without running the detector's regexes
   * over the whole text.
   */
  find(text: string, pre?: Prefilter): Span[];
  /**
   * False when `text`, as {@link Traits} describes it, cannot hold a match at all (a necessary
   * condition of every regex of the detector: chars it requires, a least length). Lets maskText
   * skip a detector outright on the short strings a JSON answer is mostly made of.
   */
  possible(t: Traits): boolean;
}

/** Longest text whose {@link Traits} are counted; a longer one is assumed to have them all. */
export const TRAITS_MAX_CHARS = 1024;

/** One pass over a short text: its length, ASCII digits, and which chars the detectors require occur. */
export interface Traits {
  length: number;
  digits: number;
  /** `T_*` bits. */
  has: number;
}

export const T_AT = 1;
export const T_UPPER = 2;
export const T_UPPER_A = 4;
export const T_J = 8;
export const T_DOT = 16;
export const T_DASH = 32;
export const T_UNDERSCORE = 64;
export const T_SLASH = 128;
export const T_COLON_EQ = 256;
export const T_COMMA = 512;
export const T_BLANK = 1024;
const T_ALL = 2047;

/** Bits by ASCII code (0 for chars no detector keys on). */
const TRAIT_OF = new Uint16Array(128);
for (let c = 65; c <= 90; c++) TRAIT_OF[c] = T_UPPER;
TRAIT_OF[64] = T_AT;
TRAIT_OF[65] = T_UPPER | T_UPPER_A;
TRAIT_OF[74] = T_UPPER | T_J;
TRAIT_OF[46] = T_DOT;
TRAIT_OF[45] = T_DASH;
TRAIT_OF[95] = T_UNDERSCORE;
TRAIT_OF[47] = T_SLASH;
TRAIT_OF[58] = T_COLON_EQ;
TRAIT_OF[61] = T_COLON_EQ;
TRAIT_OF[44] = T_COMMA;
TRAIT_OF[32] = T_BLANK;
TRAIT_OF[9] = T_BLANK;

export function traitsOf(text: string): Traits {
  if (text.length > TRAITS_MAX_CHARS) return { length: text.length, digits: text.length, has: T_ALL };
  let digits = 0;
  let has = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c < 128) has |= TRAIT_OF[c]!;
  }
  return { length: text.length, digits, has };
}

// ---------------------------------------------------------------------------------------------
// Candidate starts: the fast path of `find`.
//
// Every regex here is global and walked with `matchAll`: a search starts at the end of the
// previous match and stops at the first position where the regex matches. Trying a sticky copy
// of the regex at a sorted list of positions, skipping those inside the previous match, gives
// exactly the same matches provided the list holds every position where the regex can match
// (extra positions only cost a failed attempt): the full scan fails at every position that is
// not in the list. The sticky copy runs on the whole text, so lookbehinds, lookaheads and the
// checks after a match see the same context as in the full scan; no window can cut a match.
//
// The lists come from scans much cheaper than the detectors' regexes (indexOf for a rare
// literal, a short regex with a literal or digits up front) and are shared: a Prefilter runs
// each scan at most once per text, and only for the detectors asked for.

/** The cheap scans of one text, each computed on first use. */
export class Prefilter {
  readonly #done = new Map<(text: string, pre: Prefilter) => unknown, unknown>();

  constructor(readonly text: string) {}

  /** `scan(text, this)`, computed once per Prefilter. */
  get<T>(scan: (text: string, pre: Prefilter) => T): T {
    const done = this.#done.get(scan); // scans return arrays or objects, never undefined
    if (done !== undefined) return done as T;
    const value = scan(this.text, this);
    this.#done.set(scan, value);
    return value;
  }
}

const STICKY = new Map<RegExp, RegExp>();

/** A copy of `re` that matches only at its lastIndex (one per regex, made on first use). */
function stickyCopy(re: RegExp): RegExp {
  let sticky = STICKY.get(re);
  if (sticky === undefined) STICKY.set(re, (sticky = new RegExp(re.source, `${re.flags}y`)));
  return sticky;
}

/**
 * The matches of the global regex `re` in `text`, in order: all of `text.matchAll(re)`, or,
 * given `starts` (sorted, holding every position where `re` can match), the same matches found
 * by trying `re` only at those positions.
 */
function* matches(re: RegExp, text: string, starts: readonly number[] | undefined): Generator<RegExpExecArray> {
  if (starts === undefined) {
    yield* text.matchAll(re);
    return;
  }
  const sticky = stickyCopy(re);
  let from = 0; // where the full scan would search next
  for (const at of starts) {
    if (at < from) continue;
    sticky.lastIndex = at;
    const m = sticky.exec(text);
    if (m === null) continue;
    yield m;
    from = at + Math.max(m[0].length, 1); // matchAll steps over an empty match the same way
  }
}

/** Every position where the global `re` matches, overlapping matches included. */
function positionsOf(re: RegExp, text: string): number[] {
  const out: number[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push(m.index);
    re.lastIndex = m.index + 1;
  }
  return out;
}

/** Every index of `needle` in `text` from `from` on (overlapping occurrences included). */
function indexesOf(text: string, needle: string, from = 0): number[] {
  const out: number[] = [];
  for (let i = text.indexOf(needle, from); i !== -1; i = text.indexOf(needle, i + 1)) out.push(i);
  return out;
}

function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Whether `text[i]` is an ASCII digit (false out of range). */
function isDigitAt(text: string, i: number): boolean {
  return isDigitCode(text.charCodeAt(i)); // NaN out of range
}

/** The union of two sorted lists, sorted (a repeat stays: it costs one failed attempt). */
function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(a[i]! <= b[j]! ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

const DIGIT_RUN = /\d{3,}/g;

/** Candidate starts of the card, SSN and national phone shapes. */
interface DigitStarts {
  card: number[];
  ssn: number[];
  phone: number[];
}

/**
 * One walk over the maximal runs of 3 or more ASCII digits (`\d` without the `u` flag), which
 * every card, SSN and national phone match holds. What each detector takes from a run:
 * {@link isCardRun}, {@link isSsnRun}, {@link addPhoneStretch}.
 */
function digitStarts(text: string): DigitStarts {
  const out: DigitStarts = { card: [], ssn: [], phone: [] };
  let stretchEnd = 0; // the phone stretch of a run may hold the next runs too
  DIGIT_RUN.lastIndex = 0;
  // Leftmost-longest, each search from the end of the previous run: each match is a whole run.
  for (let m = DIGIT_RUN.exec(text); m !== null; m = DIGIT_RUN.exec(text)) {
    const start = m.index;
    const end = DIGIT_RUN.lastIndex;
    if (isCardRun(text, start, end)) out.card.push(start);
    if (isSsnRun(text, start, end)) out.ssn.push(start);
    if (start >= stretchEnd) stretchEnd = addPhoneStretch(text, start, end, stretchEnd, out.phone);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/** Stamps of the ASCII chars seen by the current {@link hasDistinct} call (a new stamp per call). */
const SEEN = new Uint32Array(128);
let seenStamp = 0;

/**
 * Whether `s` holds at least `n` distinct code points (what `new Set(s).size >= n` says), with
 * an early exit and no allocation for ASCII: the detectors ask it of every candidate, and
 * building a Set of a string's chars was a tenth of the proxy's masking time.
 */
function hasDistinct(s: string, n: number): boolean {
  if (n <= 0) return true;
  seenStamp = (seenStamp + 1) >>> 0;
  if (seenStamp === 0) {
    SEEN.fill(0);
    seenStamp = 1;
  }
  let count = 0;
  let others: Set<number> | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) {
      if (SEEN[c] === seenStamp) continue;
      SEEN[c] = seenStamp;
    } else {
      const cp = s.codePointAt(i)!;
      if (cp > 0xffff) i++;
      others ??= new Set();
      if (others.has(cp)) continue;
      others.add(cp);
    }
    if (++count >= n) return true;
  }
  return false;
}

/** A value made of one or two repeated chars (`XXXX`, `xxxx-xxxx`, `****`) is a placeholder. */
function isPlaceholder(s: string): boolean {
  const body = s.replace(/[-_.]/g, '');
  return !hasDistinct(body, 4) || /^(?:x+|X+|\*+|0+|\.+)$/.test(body);
}

function decodeBase64UrlJson(segment: string): unknown {
  if (segment.length === 0 || segment.length > 8192) return undefined;
  try {
    const json = Buffer.from(segment, 'base64url').toString('utf8');
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Spans shaped like an IBAN (country code, two check digits, alphanumeric groups), valid or
 * not. Card and phone detectors refuse digit runs inside these: the corpus's "trap" negatives
 * are invalid IBANs whose trailing digit groups happen to pass Luhn.
 */
const IBAN_SHAPE = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ /-]?[A-Za-z0-9]{1,4}){2,12}/g;

/** Where IBAN_SHAPE and IBAN_CANDIDATE can start: two capitals, two digits (never overlapping). */
const IBAN_START = /[A-Z]{2}\d\d/g;

function ibanStarts(text: string): number[] {
  return positionsOf(IBAN_START, text);
}

function ibanShapes(text: string, pre?: Prefilter): Span[] {
  const out: Span[] = [];
  for (const m of matches(IBAN_SHAPE, text, pre?.get(ibanStarts))) out.push({ start: m.index, end: m.index + m[0].length });
  return out;
}

/**
 * Whether any of `spans` overlaps `[start, end)`. With `sorted` (spans in order and apart, as
 * one regex scan returns them) by binary search: a text dense with IBANs and digit runs would
 * otherwise cost matches times shapes. The full scan keeps the linear walk it always had.
 */
function overlapsAny(spans: Span[], start: number, end: number, sorted = false): boolean {
  if (!sorted) return spans.some((s) => s.start < end && start < s.end);
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (spans[mid]!.end <= start) lo = mid + 1;
    else hi = mid;
  }
  // The first span ending after `start`; every later one starts at or after its end.
  const first = spans[lo];
  return first !== undefined && first.start < end;
}

function digitsOf(s: string): string {
  return s.replace(/\D/g, '');
}

// ---------------------------------------------------------------------------------------------
// email

const EMAIL =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}(?:[A-Za-z]{2,24}|xn--[A-Za-z0-9-]{1,59})(?![A-Za-z0-9-])/g;

/** The local part's chars (`[A-Za-z0-9._%+-]`). */
function isLocalPartCode(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigitCode(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
}

/**
 * An email match starts where the run of local-part chars before its `@` starts: the lookbehind
 * refuses a local-part char before the start, and the local part holds nothing else. So one
 * candidate per `@`, unless that run is longer than the 64 chars a local part may have.
 */
function emailStarts(text: string): number[] {
  const out: number[] = [];
  for (const at of indexesOf(text, '@')) {
    let start = at;
    while (start > 0 && at - start <= 64 && isLocalPartCode(text.charCodeAt(start - 1))) start--;
    if (start < at && at - start <= 64) out.push(start);
  }
  return out;
}

const email: Detector = {
  type: 'email',
  // EMAIL needs an `@`.
  possible: (t) => (t.has & T_AT) !== 0,
  window: 64 + 1 + 8 * 64 + 63,
  find(text, pre) {
    const out: Span[] = [];
    for (const m of matches(EMAIL, text, pre?.get(emailStarts))) out.push({ start: m.index, end: m.index + m[0].length });
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// credit_card (Luhn)

/** 13-19 digits, bare or in groups separated by one consistent space or dash. */
const CARD =
  /(?<![A-Za-z0-9-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5})(?![A-Za-z0-9])/g;

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * Whether a card match can start at the digit run `[start, end)`. It starts a run (the lookbehind
 * refuses a digit before it) of 13-19 bare digits, or of exactly 4 then a space or dash and a
 * digit.
 */
function isCardRun(text: string, start: number, end: number): boolean {
  const sep = text.charCodeAt(end);
  return end - start >= 13 || (end - start === 4 && (sep === 32 || sep === 45) && isDigitAt(text, end + 1));
}

function cardStarts(text: string, pre: Prefilter): number[] {
  return pre.get(digitStarts).card;
}

const credit_card: Detector = {
  type: 'credit_card',
  // 13 digits at least.
  possible: (t) => t.digits >= 13,
  window: 19 + 6,
  find(text, pre) {
    const out: Span[] = [];
    let shapes: Span[] | undefined;
    for (const m of matches(CARD, text, pre?.get(cardStarts))) {
      const digits = digitsOf(m[0]);
      if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) continue;
      // 13 digits starting with 1 read as epoch milliseconds (2001-2286), not a card.
      if (digits.length === 13 && digits.startsWith('1')) continue;
      if (!hasDistinct(digits, 2)) continue;
      shapes ??= ibanShapes(text, pre);
      if (overlapsAny(shapes, m.index, m.index + m[0].length, pre !== undefined)) continue;
      out.push({ start: m.index, end: m.index + m[0].length });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// us_ssn (area, group and serial rules)

/** 3-2-4 with one consistent delimiter (or none), plus the 3-6 and 5-4 dash groupings. */
const SSN =
  /(?<![A-Za-z0-9.-])(?:(\d{3})([- .]?)(\d{2})\2(\d{4})|(\d{3})-(\d{2})(\d{4})|(\d{3})(\d{2})-(\d{4}))(?![A-Za-z0-9]|[-.]\d)/g;

/** The numbers the SSA itself used in advertising (invalid by publication). */
const SSN_PUBLISHED = new Set(['078051120', '219099999', '457555462']);

export function ssnValid(digits: string): boolean {
  if (digits.length !== 9) return false;
  const area = digits.slice(0, 3);
  const group = digits.slice(3, 5);
  const serial = digits.slice(5);
  // SSA rules: no area 000, 666 or 900-999; no group 00; no serial 0000.
  if (area === '000' || area === '666' || area.startsWith('9')) return false;
  if (group === '00' || serial === '0000') return false;
  if (SSN_PUBLISHED.has(digits)) return false;
  if (!hasDistinct(digits, 2) || digits === '123456789') return false;
  return true;
}

/**
 * Whether an SSN match can start at the digit run `[start, end)`. It starts a run (the lookbehind
 * refuses a digit before it) of 3 digits then a delimiter and a digit, 5 digits then a dash and a
 * digit, or 9 bare digits.
 */
function isSsnRun(text: string, start: number, end: number): boolean {
  const len = end - start;
  if (len >= 9) return true;
  const sep = text.charCodeAt(end);
  if (!isDigitAt(text, end + 1)) return false;
  return (len === 3 && (sep === 45 || sep === 32 || sep === 46)) || (len === 5 && sep === 45);
}

function ssnStarts(text: string, pre: Prefilter): number[] {
  return pre.get(digitStarts).ssn;
}

const us_ssn: Detector = {
  type: 'us_ssn',
  // 9 digits.
  possible: (t) => t.digits >= 9,
  window: 11,
  find(text, pre) {
    const out: Span[] = [];
    for (const m of matches(SSN, text, pre?.get(ssnStarts))) {
      if (!ssnValid(digitsOf(m[0]))) continue;
      out.push({ start: m.index, end: m.index + m[0].length });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// iban (mod 97, per-country length)

const IBAN_CANDIDATE =
  /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?:([ /-])[A-Z0-9]{4})(?:\1[A-Z0-9]{4}){1,7}(?:\1[A-Z0-9]{1,4})?)(?![A-Za-z0-9])/g;

export function ibanValid(compact: string): boolean {
  const expected = IBAN_LENGTHS[compact.slice(0, 2)];
  if (expected === undefined || compact.length !== expected) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let rem = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const val = code >= 65 ? String(code - 55) : ch;
    for (const d of val) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1;
}

/**
 * Where a grouped candidate ends once it holds its country's length: a trailing word after
 * the last group (`… 8901 X in a sentence`) is not part of the IBAN. Returns the cut length
 * in chars, or 0 when the candidate is too short or the cut falls inside a group.
 */
function ibanCut(candidate: string): number {
  const expected = IBAN_LENGTHS[candidate.slice(0, 2)];
  if (expected === undefined) return 0;
  let count = 0;
  for (let i = 0; i < candidate.length; i++) {
    if (!/[ /-]/.test(candidate[i] ?? '')) count++;
    if (count === expected) {
      const next = candidate[i + 1];
      return next === undefined || /[ /-]/.test(next) ? i + 1 : 0;
    }
  }
  return 0;
}

const iban: Detector = {
  type: 'iban',
  // Two capitals and two digits, then 11 chars or more.
  possible: (t) => t.length >= 15 && t.digits >= 2 && (t.has & T_UPPER) !== 0,
  window: 34 + 8,
  find(text, pre) {
    const out: Span[] = [];
    for (const m of matches(IBAN_CANDIDATE, text, pre?.get(ibanStarts))) {
      const len = ibanCut(m[0]);
      if (len === 0 || !ibanValid(m[0].slice(0, len).replace(/[ /-]/g, ''))) continue;
      out.push({ start: m.index, end: m.index + len });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// phone

/**
 * Three shapes: international (`+` and 8-15 digits), NANP (area and exchange 2-9, optionally
 * after a 1-3 digit country code), and trunk-prefix national numbers (`0…`, as in TR, IL, JP,
 * and CN mobiles `1[3-9]…`). Bare national numbers without separators must have 11 digits:
 * 9-10 bare digits starting with 0 are more often ids than phones.
 */
const PHONE = new RegExp(
  [
    String.raw`(?<![\w+])\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}(?![\w])`,
    String.raw`(?<![\d.-])(?:\d{1,3}-)?(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-]?)\d{3}[ .-]?\d{4}(?![\w]|[.-]\d)`,
    String.raw`(?<![\w.-])0[ -]?(?:\(\d{2,4}\)|\d{1,4})[ -]\d{3,4}(?:[ -]?\d{2,4}){0,2}(?![\w]|[.-]\d)`,
    String.raw`(?<![\w.-])0\d{2,3}[ -]\d{3,4}[ -]\d{2,4}(?:[ -]\d{2})?(?![\w]|[.-]\d)`,
    String.raw`(?<![\w.-])(?:0\d{10}|1[3-9]\d{9})(?![\w]|[.-]\d)`,
  ].join('|'),
  'g',
);

/** Chars of the national shapes (all but the first): digits, space, `(`, `)`, `-`, `.`. */
function isPhoneCode(c: number): boolean {
  return isDigitCode(c) || c === 32 || c === 40 || c === 41 || c === 45 || c === 46;
}

/**
 * The national shapes of PHONE hold at least 5 digits and a run of 3 or more (the group after
 * the area code or trunk prefix; the whole number for the bare shapes), are written only with
 * {@link isPhoneCode} chars, and start at a `(` or at the first digit of a run (their lookbehinds
 * refuse a digit before). So this takes the maximal stretch of such chars around the digit run
 * `[start, end)` (not reaching back before `from`, where the previous stretch ended), and adds
 * to `out` its `(`s and run starts that have 5 digits or more from there to the stretch's end.
 * Returns the stretch's end.
 */
function addPhoneStretch(text: string, start: number, end: number, from: number, out: number[]): number {
  let first = start;
  while (first > from && isPhoneCode(text.charCodeAt(first - 1))) first--;
  let last = end;
  while (last < text.length && isPhoneCode(text.charCodeAt(last))) last++;
  let digitsFromHere = 0;
  for (let i = first; i < last; i++) if (isDigitAt(text, i)) digitsFromHere++;
  for (let i = first; i < last && digitsFromHere >= 5; i++) {
    const c = text.charCodeAt(i);
    if (c === 40 || (isDigitCode(c) && !isDigitAt(text, i - 1))) out.push(i);
    if (isDigitCode(c)) digitsFromHere--;
  }
  return last;
}

/** The national shapes' starts, and the international shape's: a `+` before a digit. */
function phoneStarts(text: string, pre: Prefilter): number[] {
  const plus = indexesOf(text, '+').filter((i) => isDigitAt(text, i + 1));
  return mergeSorted(plus, pre.get(digitStarts).phone);
}

const phone: Detector = {
  type: 'phone',
  // 9 to 15 digits are required of every match.
  possible: (t) => t.digits >= 9,
  window: 32,
  find(text, pre) {
    const out: Span[] = [];
    let shapes: Span[] | undefined;
    for (const m of matches(PHONE, text, pre?.get(phoneStarts))) {
      const n = digitsOf(m[0]).length;
      if (n < 9 || n > 15) continue;
      shapes ??= ibanShapes(text, pre);
      if (overlapsAny(shapes, m.index, m.index + m[0].length, pre !== undefined)) continue;
      out.push({ start: m.index, end: m.index + m[0].length });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// aws_access_key

const AWS_KEY = /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}(?![A-Za-z0-9])/g;

/** AWS_KEY's prefixes, where its matches start. */
const AWS_PREFIX = /AKIA|ASIA|ABIA|ACCA|A3T/g;

function awsStarts(text: string): number[] {
  return positionsOf(AWS_PREFIX, text);
}

const aws_access_key: Detector = {
  type: 'aws_access_key',
  // 20 chars, starting with a capital A.
  possible: (t) => t.length >= 20 && (t.has & T_UPPER_A) !== 0,
  window: 20,
  find(text, pre) {
    const out: Span[] = [];
    for (const m of matches(AWS_KEY, text, pre?.get(awsStarts))) {
      // AWS's documentation keys end in EXAMPLE; AKIAXXXX… is a placeholder.
      if (m[0].endsWith('EXAMPLE') || !hasDistinct(m[0].slice(4), 4)) continue;
      out.push({ start: m.index, end: m.index + m[0].length });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// private_key (PEM / OpenSSH / PGP armor)

const PEM_BEGIN = /-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----/g;
const PEM_MAX_BODY = 16384;

const PEM_END = /-----END/g;
const PEM_BODY_LINE = /^[ \t]*(?:[A-Za-z0-9+/=]{1,128}|[A-Za-z-]{1,40}:.{0,200})?[ \t]*\r?$/;

/** End of the base64 lines that follow a BEGIN line with no END marker (a truncated key). */
function pemBodyWithoutEnd(text: string, from: number, limit: number): number {
  let lineStart = from;
  let end = from;
  while (lineStart <= limit) {
    const nl = text.indexOf('\n', lineStart);
    const lineEnd = nl === -1 || nl > limit ? limit : nl;
    if (!PEM_BODY_LINE.test(text.slice(lineStart, lineEnd))) break;
    end = lineEnd;
    if (lineEnd >= limit) break;
    lineStart = lineEnd + 1;
  }
  return end;
}

/** PEM_BEGIN matches start at `-----BEGIN`; `BEGIN` is the rarer half to look for. */
function pemStarts(text: string): number[] {
  return indexesOf(text, 'BEGIN')
    .map((i) => i - 5)
    .filter((i) => i >= 0 && text.startsWith('-----', i));
}

/**
 * Where the END marker of a body starting at `from` is: the first one there or after, if it
 * starts by `limit`. Called with `from` increasing.
 */
type EndFinder = (from: number, limit: number) => number | undefined;

/**
 * The full scan lists every END marker (PEM_END) and walks them with one pointer, each body
 * starting after the previous one: each BEGIN costs O(1) amortised to pair. The fast path finds
 * the same markers ('-----END' cannot overlap itself, so PEM_END's matches are all its
 * occurrences) with indexOf from the first body on, only as far as the bodies ask: text
 * without a key never looks for one, and no char is searched twice.
 */
function endFinder(text: string, pre: Prefilter | undefined): EndFinder {
  if (pre !== undefined) {
    let next: number | undefined; // the first marker at or after the last search's start; -1: none
    return (from, limit) => {
      if (next === undefined || (next !== -1 && next < from)) next = text.indexOf('-----END', from);
      return next !== -1 && next <= limit ? next : undefined;
    };
  }
  const ends = [...text.matchAll(PEM_END)].map((m) => m.index);
  let e = 0;
  return (from, limit) => {
    while (e < ends.length && (ends[e] ?? 0) < from) e++;
    const endAt = ends[e];
    return endAt !== undefined && endAt <= limit ? endAt : undefined;
  };
}

/**
 * Where the span of a key whose END marker is at `endAt` ends: after the dashes that close the
 * END line when they come within 80 chars, else after '-----END'. (The search is bounded to
 * those 80 chars: a text of many keys without closing dashes must not rescan its whole tail.)
 */
function pemSpanEnd(text: string, endAt: number): number {
  const at = text.slice(endAt + 8, endAt + 79 + 5).indexOf('-----');
  return at === -1 ? endAt + 8 : endAt + 8 + at + 5;
}

const private_key: Detector = {
  type: 'private_key',
  // `-----BEGIN`, `PRIVATE KEY-----`: 26 chars at least.
  possible: (t) => t.length >= 26 && (t.has & T_DASH) !== 0,
  window: PEM_MAX_BODY + 120,
  find(text, pre) {
    const out: Span[] = [];
    const endAfter = endFinder(text, pre);
    let covered = 0;
    for (const m of matches(PEM_BEGIN, text, pre?.get(pemStarts))) {
      if (m.index < covered) continue; // inside the previous key (defence in depth)
      const bodyStart = m.index + m[0].length;
      const limit = Math.min(text.length, bodyStart + PEM_MAX_BODY);
      const endAt = endAfter(bodyStart, limit);
      let bodyEnd: number;
      let spanEnd: number;
      if (endAt !== undefined) {
        bodyEnd = endAt;
        spanEnd = pemSpanEnd(text, endAt);
      } else {
        bodyEnd = pemBodyWithoutEnd(text, bodyStart, limit);
        spanEnd = bodyEnd;
      }
      const body = text.slice(bodyStart, bodyEnd).replace(/^[A-Za-z-]{1,40}:.*$/gm, '');
      const b64 = body.replace(/[^A-Za-z0-9+/=]/g, '');
      // An empty or placeholder body ("anything") is not a key.
      if (b64.length < 32 || !hasDistinct(b64, 10)) continue;
      out.push({ start: m.index, end: spanEnd });
      covered = spanEnd;
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// jwt (RFC 7519: the header must base64url-decode to a JSON object with `alg`)

const JWT =
  /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{2,16384}\.[A-Za-z0-9_-]{0,4096}(?![A-Za-z0-9_-])/g;

/**
 * Header check per RFC 7515 §4.1.1 (`alg` is required). Defence in depth: a token whose header
 * was mangled but whose payload still decodes to a JSON object is a JWT too (the corpus holds
 * an edited sample like that); requiring both to fail keeps random `eyJ…` strings out.
 */
export function jwtValid(token: string): boolean {
  const [header = '', payload = ''] = token.split('.');
  const h = decodeBase64UrlJson(header);
  if (isObject(h) && typeof h['alg'] === 'string') return true;
  return isObject(decodeBase64UrlJson(payload));
}

/** JWT matches start at `eyJ`; the `J` is the rare char to look for. */
function jwtStarts(text: string): number[] {
  return indexesOf(text, 'J')
    .map((i) => i - 2)
    .filter((i) => i >= 0 && text.startsWith('ey', i));
}

const jwt: Detector = {
  type: 'jwt',
  // `eyJ`, 8 chars, a dot, 2 chars, a dot.
  possible: (t) => t.length >= 15 && (t.has & T_J) !== 0 && (t.has & T_DOT) !== 0,
  window: 4096 + 16384 + 4096 + 8,
  find(text, pre) {
    const out: Span[] = [];
    for (const m of matches(JWT, text, pre?.get(jwtStarts))) {
      if (!jwtValid(m[0])) continue;
      out.push({ start: m.index, end: m.index + m[0].length });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// bearer_token (Authorization: Bearer / Basic / scheme-less credentials)

const CRED = String.raw`[A-Za-z0-9._~+/=@-]{8,4096}`;
const AUTH_HEADER = new RegExp(
  String.raw`Authorization["']?[ \t]*[:=][ \t]*["']?(?:([A-Za-z][A-Za-z-]{0,19})[ \t]+)?(${CRED})`,
  'gi',
);
const BEARER = new RegExp(String.raw`\bBearer[ \t]+(${CRED})`, 'gi');

function credentialOk(cred: string): boolean {
  return !isPlaceholder(cred) && /[A-Za-z0-9]/.test(cred);
}

const bearer_token: Detector = {
  type: 'bearer_token',
  // `Authorization` then `:` or `=`, or `Bearer` then a blank; then 8 chars.
  possible: (t) => t.length >= 15 && (t.has & (T_COLON_EQ | T_BLANK)) !== 0,
  window: 4096 + 40,
  find(text, pre) {
    const out: Span[] = [];
    for (const m of matches(AUTH_HEADER, text, pre?.get(authHeaderStarts))) {
      const scheme = m[1]?.toLowerCase();
      const cred = m[2] ?? '';
      // `Token` / `Api-Token` schemes carry API keys: the api_key detector owns those.
      if (scheme !== undefined && scheme !== 'bearer' && scheme !== 'basic') continue;
      if (!credentialOk(cred)) continue;
      const start = m.index + m[0].length - cred.length;
      out.push({ start, end: start + cred.length });
    }
    for (const m of matches(BEARER, text, pre?.get(bearerStarts))) {
      const cred = m[1] ?? '';
      if (!credentialOk(cred)) continue;
      const start = m.index + m[0].length - cred.length;
      out.push({ start, end: start + cred.length });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// api_key (known prefixes, key-named assignments and API-key headers)

const KNOWN_KEYS = new RegExp(
  [
    // GitHub (classic and fine-grained).
    String.raw`(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}`,
    String.raw`github_pat_[A-Za-z0-9_]{82}`,
    // GitLab personal, pipeline-trigger, runner tokens and runner registration tokens.
    String.raw`gl(?:pat|ptt|rt)-[A-Za-z0-9_.-]{20,64}`,
    String.raw`GR1348941[A-Za-z0-9_-]{20}`,
    // Slack: bot/user/legacy tokens, app-level, configuration and refresh tokens.
    String.raw`xox[abposre]-(?:\d-)?\d{6,14}(?:-[A-Za-z0-9]{1,64}){1,4}`,
    String.raw`xapp-\d-[A-Z0-9]{9,12}-\d{10,14}-[a-f0-9]{32,80}`,
    String.raw`xoxe\.xox[bp]-\d-[A-Za-z0-9]{100,200}`,
    String.raw`xoxe-\d-[A-Za-z0-9]{100,200}`,
    // Stripe.
    String.raw`(?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,99}`,
    // Anthropic (93 chars then "AA").
    String.raw`sk-ant-(?:api03|admin01)-[A-Za-z0-9_-]{93}AA`,
    // OpenAI (project, service-account, admin and legacy keys all embed "T3BlbkFJ").
    String.raw`sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{8,160}T3BlbkFJ[A-Za-z0-9_-]{8,160}`,
  ]
    .map((p) => `(?:${p})`)
    .join('|'),
  'g',
);
const KNOWN_KEY_BOUNDARY_BEFORE = /[A-Za-z0-9_-]/;
const SLACK_WEBHOOK = /hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/+-]{20,160}/g;

/**
 * A key-named assignment: `apiKey: "…"`, `DB_PASSWORD=…`, `"client_secret" : "…"`,
 * `("api_token", "…")`, or a header `Api-Token: …` / `Authorization: Token …`.
 */
const KEYWORD = String.raw`(?:api[_-]?key|api[_-]?token|secret|token|passw(?:or)?d|pwd|credentials?|authorization|auth|access[_-]?key)`;
const ASSIGNMENT = new RegExp(
  String.raw`(${KEYWORD})\d{0,2}(?:["'][ \t]*,|["']?[ \t]*(?::=|=>|[:=]))[ \t]*["']?(?:(?:Api-)?Token[ \t]+)?([A-Za-z0-9._~+/=-]{8,256})`,
  'gi',
);
/**
 * Where AUTH_HEADER, BEARER and ASSIGNMENT can start: a key word (`Authorization` is one) then
 * what ASSIGNMENT and AUTH_HEADER require before the value (digits, a quote, blanks and `:`,
 * `=` or `,`), or `Bearer` and a blank. Case-insensitive like them (without the `u` flag only
 * ASCII letters fold, so no other char can match a letter here). The key words are KEYWORD's,
 * grouped by first letters: the same strings, which V8 scans for a fifth faster this way.
 */
const KEYWORD_BY_FIRST_LETTERS = String.raw`(?:a(?:pi[_-]?(?:key|token)|uth(?:orization)?|ccess[_-]?key)|secret|token|p(?:assw(?:or)?d|wd)|credentials?)`;
const CREDENTIAL_START = new RegExp(String.raw`${KEYWORD_BY_FIRST_LETTERS}\d{0,2}["']?[ \t]*[:=,]|bearer[ \t]`, 'gi');

/** CREDENTIAL_START's positions, split by the regexes that can start there (by first letter). */
interface CredentialStarts {
  header: number[];
  bearer: number[];
  assignment: number[];
}

function credentialStarts(text: string): CredentialStarts {
  const out: CredentialStarts = { header: [], bearer: [], assignment: [] };
  for (const at of positionsOf(CREDENTIAL_START, text)) {
    const first = text.charCodeAt(at) | 0x20; // ASCII lower case
    if (first === 0x62) {
      out.bearer.push(at); // no key word starts with b
    } else {
      out.assignment.push(at);
      if (first === 0x61) out.header.push(at); // Authorization
    }
  }
  return out;
}

const authHeaderStarts = (_: string, pre: Prefilter) => pre.get(credentialStarts).header;
const bearerStarts = (_: string, pre: Prefilter) => pre.get(credentialStarts).bearer;
const assignmentStarts = (_: string, pre: Prefilter) => pre.get(credentialStarts).assignment;

/** Key names that hold public or anti-forgery values, not credentials. */
const NOT_A_SECRET_NAME = /(?:public|csrf|xsrf)[A-Za-z0-9_.-]{0,40}$/i;

/** Values the known-prefix patterns own (a near-miss `xoxp-1234-…` is not a key either). */
const KNOWN_PREFIX = /^(?:xox|xapp-|gh[pousr]_|github_pat_|gl(?:pat|ptt|rt)-|GR1348941|sk-|sk_|rk_|AKIA|ASIA)/;

function assignedValueOk(value: string): boolean {
  if (KNOWN_PREFIX.test(value) || /EXAMPLE$/.test(value)) return false;
  return /\d/.test(value) && /[A-Za-z]/.test(value) && hasDistinct(value, 5) && !isPlaceholder(value);
}

/**
 * The literal prefixes of KNOWN_KEYS' alternatives and SLACK_WEBHOOK's, where their matches
 * start (one scan: adding the webhook to this regex costs far less than a scan of its own).
 */
const KEY_PREFIX = /gh[pousr]_|github_pat_|gl(?:pat|ptt|rt)-|GR1348941|xox|xapp-|[sr]k_|sk-|hooks\.slack\.com\//g;

interface KeyPrefixStarts {
  known: number[];
  slack: number[];
}

function keyPrefixStarts(text: string): KeyPrefixStarts {
  const out: KeyPrefixStarts = { known: [], slack: [] };
  for (const at of positionsOf(KEY_PREFIX, text)) (text[at] === 'h' ? out.slack : out.known).push(at);
  return out;
}

const knownKeyStarts = (_: string, pre: Prefilter) => pre.get(keyPrefixStarts).known;
const slackWebhookStarts = (_: string, pre: Prefilter) => pre.get(keyPrefixStarts).slack;

const api_key: Detector = {
  type: 'api_key',
  // Every known prefix holds `_` or `-` (GR1348941: 7 digits), a webhook `/`, an assignment
  // `:`, `=` or `,`; the shortest match is `pwd=` and 8 chars.
  possible: (t) => t.length >= 12 && (t.digits >= 7 || (t.has & (T_UNDERSCORE | T_DASH | T_SLASH | T_COLON_EQ | T_COMMA)) !== 0),
  window: 256 + 60,
  find(text, pre) {
    const out: Span[] = [];
    for (const m of matches(KNOWN_KEYS, text, pre?.get(knownKeyStarts))) {
      const before = text[m.index - 1];
      const after = text[m.index + m[0].length];
      if (before !== undefined && KNOWN_KEY_BOUNDARY_BEFORE.test(before)) continue;
      if (after !== undefined && KNOWN_KEY_BOUNDARY_BEFORE.test(after)) continue;
      // Placeholders (`ghp_xxxx…`) and Slack tokens whose last part has no letter (`…-####`).
      const tail = m[0].slice(-20);
      if (!hasDistinct(tail.replace(/[-_.]/g, ''), 8)) continue;
      if (m[0].startsWith('xox')) {
        const last = m[0].slice(m[0].lastIndexOf('-') + 1);
        if (!/[A-Za-z]/.test(last)) continue;
      }
      out.push({ start: m.index, end: m.index + m[0].length });
    }
    for (const m of matches(SLACK_WEBHOOK, text, pre?.get(slackWebhookStarts))) {
      out.push({ start: m.index, end: m.index + m[0].length });
    }
    for (const m of matches(ASSIGNMENT, text, pre?.get(assignmentStarts))) {
      const kw = m[1] ?? '';
      const value = m[2] ?? '';
      const prev = text[m.index - 1];
      // The key word must start a name part: `api_token`, `apiKey`, `AWSToken`, not
      // `jsonwebtoken` or `accessor`.
      if (prev !== undefined && /[A-Za-z]/.test(prev) && !/^[A-Z]/.test(kw)) continue;
      if (NOT_A_SECRET_NAME.test(text.slice(Math.max(0, m.index - 40), m.index + kw.length))) continue;
      if (!assignedValueOk(value)) continue;
      const start = m.index + m[0].length - value.length;
      out.push({ start, end: start + value.length });
    }
    return out;
  },
};

/** Every detector, one per contract type. */
export const DETECTORS: readonly Detector[] = Object.freeze([
  private_key,
  jwt,
  aws_access_key,
  bearer_token,
  api_key,
  credit_card,
  iban,
  us_ssn,
  email,
  phone,
]);

/** Detector by type. */
export const DETECTOR_BY_TYPE: Readonly<Record<DetectorType, Detector>> = Object.freeze(
  Object.fromEntries(DETECTORS.map((d) => [d.type, d])) as Record<DetectorType, Detector>,
);

/** A regex the detectors walk with a Prefilter, and the scan listing its candidate starts. */
export interface CandidateScan {
  regex: RegExp;
  starts: (text: string, pre: Prefilter) => readonly number[];
}

/**
 * Every regex the detectors walk with a Prefilter. For tests, which check the one rule the fast
 * path rests on: the starts are sorted and hold every position where the regex matches.
 */
export const CANDIDATE_SCANS: readonly CandidateScan[] = Object.freeze([
  { regex: EMAIL, starts: emailStarts },
  { regex: CARD, starts: cardStarts },
  { regex: SSN, starts: ssnStarts },
  { regex: IBAN_CANDIDATE, starts: ibanStarts },
  { regex: IBAN_SHAPE, starts: ibanStarts },
  { regex: PHONE, starts: phoneStarts },
  { regex: AWS_KEY, starts: awsStarts },
  { regex: PEM_BEGIN, starts: pemStarts },
  { regex: JWT, starts: jwtStarts },
  { regex: AUTH_HEADER, starts: authHeaderStarts },
  { regex: BEARER, starts: bearerStarts },
  { regex: KNOWN_KEYS, starts: knownKeyStarts },
  { regex: SLACK_WEBHOOK, starts: slackWebhookStarts },
  { regex: ASSIGNMENT, starts: assignmentStarts },
]);
