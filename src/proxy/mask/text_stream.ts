/**
 * Streaming text masking: text arrives in pieces, masked text leaves as soon as no later piece
 * can change how it is masked. The output, concatenated, is exactly `maskText(whole).text`
 * (test/proxy/mask/text_stream.test.ts checks it for every split of corpus-built inputs), up to
 * the corners listed under "Where exactness ends".
 *
 * ## Why a cut is safe
 * The text is released in segments `[0, p)`, each masked on its own with `maskText`. A cut `p`
 * always falls just after whitespace (ASCII space, tab, CR, LF, FF, VT). Masking `[0, p)` and
 * `[p, n)` separately gives the same result as masking `[0, n)` when no regex match of any
 * detector (validated or not) crosses `p`:
 * - every lookbehind in detectors.ts is a negated class without whitespace (or `\b`), so it
 *   reads the same at the start of a string as after whitespace; lookaheads read at most two
 *   chars and no match ends in whitespace;
 * - a global regex scan then finds the same matches on each side (its position after the last
 *   match before `p` is the same), and the checks made after a match look at most at the next
 *   and previous char, at a key name ending at the match (broken by the whitespace), or at the
 *   IBAN shapes (matches themselves).
 * Only these matches contain whitespace, so only they can cross `p`:
 * - digit groups (card, SSN, IBAN and IBAN shape, phone): at most 64 chars, single spaces,
 *   starting with a token that holds a digit within its first 5 chars;
 * - key-named values (`Bearer x`, `Authorization: Basic x`, `password = x`, `"api_key", "x"`):
 *   a keyword, glue of quotes, blanks and `:`/`=`/`,`, then the value;
 * - PEM armor: the BEGIN line (at most 72 chars) and the body up to END (multi-line).
 * Hence the hold rule: the trailing token (it may still grow) is held; then, while a
 * {@link HOLD_TRIGGER} (a digit, `-----`, a keyword with its glue) starts within the
 * {@link HOLD_WINDOW} chars before the cut, the cut moves to the start of the token holding the
 * earliest one; and while a `-----BEGIN` before the cut has no `-----END` after it (and is less
 * than {@link PEM_HOLD} chars back), the cut moves before it. A match crossing the cut would
 * start with a trigger inside the window, so at the fixed point none crosses.
 *
 * ## Where exactness ends (documented corners)
 * - A key-named value whose keyword starts more than {@link HOLD_WINDOW} chars before it (in
 *   practice: more than about 85 blanks of glue, as in `password:` + 90 spaces + value) can
 *   have its keyword released before the value: the value then leaves unmasked unless another
 *   detector matches it on its own. The detectors allow unbounded blanks there; no model writes
 *   them, and holding an unbounded run would hold back unbounded text.
 * - More than {@link MAX_HOLD} chars held (one whitespace-free token that long, or that much
 *   text with a trigger every < 96 chars): the oldest half is released at a whitespace (or,
 *   in one token, anywhere), masked on its own.
 * - A PEM key with no END line whose body runs past the detector's window is masked as the
 *   detector would mask it (up to the window), and what follows is released.
 */
import { DETECTOR_BY_TYPE, type DetectorType } from './detectors.js';
import { maskString } from './mask_string.js';
import type { MaskCounts } from './types.js';

/** Chars before a cut in which a trigger holds the cut back (G). Longest digit-group match: 64. */
export const HOLD_WINDOW = 96;

/**
 * What holds a cut back when it starts within {@link HOLD_WINDOW} chars before it: a digit, PEM
 * dashes, `Bearer` and a blank, or a key word (any word the key-named detectors start with)
 * followed by the glue of an assignment. `$` stands for "the glue may go on in the next piece";
 * the window is matched on a slice, so `$` may also fire at the slice's end (errs on holding).
 */
export const HOLD_TRIGGER =
  /[0-9]|-----|bearer(?:[ \t]|$)|(?:api|secret|token|passw|pwd|credential|auth|access)[A-Za-z_-]*[0-9]{0,2}["']?[ \t]*(?:[:=,]|$)/i;

/** Chars after the window start that a trigger's glue may be read over (the slice's length beyond the cut). */
const GLUE_LOOKAHEAD = 64;

/**
 * An unterminated `-----BEGIN` holds the cut for at most this many chars: the private_key
 * detector's window plus the longest BEGIN line and END search it allows past its body limit.
 */
export const PEM_HOLD = DETECTOR_BY_TYPE.private_key.window + 256;

/**
 * Most chars held back (UTF-16 code units), default 64 Ki: above the longest single-token match
 * (a JWT, about 24.6 Ki) and {@link PEM_HOLD}. Beyond it the oldest half is released.
 */
export const MAX_HOLD = 64 * 1024;

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** Start of the whitespace-free token holding `i`. */
function tokenStart(s: string, i: number): number {
  let j = i;
  while (j > 0 && !isSpace(s.charCodeAt(j - 1))) j--;
  return j;
}

/** Masks text written in pieces; see the module comment for the hold rule and its guarantee. */
export class TextStreamMasker {
  private pending = '';
  /**
   * Walks of the hold rule that reach a position <= this end at 0 (they did last time, and
   * triggers before the last cut can only disappear as text arrives): keeps each write's walk
   * proportional to the new text, not to what is held.
   */
  private settled = 0;
  /** Whether `pending` may hold `-----BEGIN` (only then is the PEM rule evaluated). */
  private pem = false;

  constructor(
    private readonly types: readonly DetectorType[],
    private readonly counts: MaskCounts,
  ) {}

  /** Chars currently held back. */
  get held(): number {
    return this.pending.length;
  }

  /** Adds `text`; returns the masked text that can be released now (possibly ''). */
  write(text: string): string {
    if (text.length === 0) return '';
    if (this.types.length === 0) return text;
    const base = this.pending.length;
    this.pending += text;
    if (!this.pem && this.pending.indexOf('-----BEGIN', Math.max(0, base - 9)) !== -1) this.pem = true;
    let last = text.length - 1;
    while (last >= 0 && !isSpace(text.charCodeAt(last))) last--;
    // No new whitespace: the trailing token only grew, and the cut is where it was.
    let p = last < 0 ? 0 : this.cut(base + last + 1);
    if (this.pending.length - p > MAX_HOLD) p = this.forcedCut();
    return p === 0 ? '' : this.release(p);
  }

  /** Everything still held, masked. */
  end(): string {
    const rest = this.pending;
    this.pending = '';
    this.settled = 0;
    this.pem = false;
    return this.mask(rest);
  }

  /** The hold rule, walked left from `p0` (just after the last whitespace). */
  private cut(p0: number): number {
    const s = this.pending;
    let q = p0;
    for (;;) {
      if (q <= this.settled) {
        this.settled = p0;
        return 0;
      }
      const from = Math.max(0, q - HOLD_WINDOW);
      const m = HOLD_TRIGGER.exec(s.slice(from, Math.min(s.length, q + GLUE_LOOKAHEAD)));
      if (m !== null && from + m.index < q) {
        q = tokenStart(s, from + m.index);
        continue;
      }
      const begin = this.pem ? this.unterminatedBegin(q) : -1;
      if (begin !== -1) {
        q = tokenStart(s, begin);
        continue;
      }
      // Walks from (q, p0] all end at q; after the release q is 0.
      this.settled = p0 - q;
      return q;
    }
  }

  /** The first `-----BEGIN` before `q` with no `-----END` after it before `q`, if held for less than PEM_HOLD. */
  private unterminatedBegin(q: number): number {
    const s = this.pending;
    const end = q >= 8 ? s.lastIndexOf('-----END', q - 8) : -1;
    let b = s.indexOf('-----BEGIN', end === -1 ? 0 : end + 8);
    while (b !== -1 && b < q) {
      if (q - b <= PEM_HOLD) return b;
      b = s.indexOf('-----BEGIN', b + 10);
    }
    return -1;
  }

  /** Too much held: release the oldest half, cut at a whitespace if there is one (inexact corner). */
  private forcedCut(): number {
    const s = this.pending;
    let p = s.length - (MAX_HOLD >> 1);
    const ws = tokenStart(s, p);
    if (ws > 0) p = ws;
    else if (p > 0 && (s.charCodeAt(p - 1) & 0xfc00) === 0xd800) p--; // keep a surrogate pair whole
    this.settled = 0;
    return p;
  }

  private release(p: number): string {
    const segment = this.pending.slice(0, p);
    this.pending = this.pending.slice(p);
    if (this.pem) this.pem = this.pending.includes('-----BEGIN');
    return this.mask(segment);
  }

  private mask(text: string): string {
    return text.length === 0 ? '' : maskString(text, this.types, this.counts);
  }
}
