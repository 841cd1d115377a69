import type { DetectorType } from './detectors.js';
import { maskFast } from './mask_text.js';
import type { MaskCounts } from './types.js';

/**
 * A cheap pre-check: a string in which this finds nothing is one no detector of detectors.ts can
 * match, so `maskText` would return it unchanged and need not run. Every detector needs one of:
 * a digit (card, SSN, IBAN, phone, the value of a key-named assignment, `A3T…` AWS keys), `@`
 * (email), `-` or `_` (PEM armor, the GitHub/GitLab/Slack/Stripe/OpenAI/Anthropic key
 * prefixes), `eyJ` (JWT), an AWS key prefix, `Bearer` / `Authorization` (credentials made of
 * letters only), or a Slack webhook host. Case-insensitive, so it errs towards running maskText.
 *
 * It must follow detectors.ts: test/proxy/mask/mask_string.test.ts checks it against the corpus
 * and against random strings, so a detector that starts matching something else fails there.
 */
export const MAYBE_SECRET = /[0-9@_-]|eyJ|A(?:KIA|SIA|BIA|CCA)|bearer|authorization|hooks\.slack/i;

/** `maskText(text, types).text`, counting into `counts`; skips the scan when nothing can match. */
export function maskString(text: string, types: readonly DetectorType[], counts: MaskCounts): string {
  if (types.length === 0 || !MAYBE_SECRET.test(text)) return text;
  return maskFast(text, types, counts);
}
