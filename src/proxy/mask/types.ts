import type { DetectorType } from './detectors.js';

/** What a masked value is replaced by: `[MASKED:<type>]` for a detector, `[MASKED:field]` for a `mask_fields` key. */
export type MaskLabel = DetectorType | 'field';

/** Replacements made, by label; only labels with at least one replacement are present. */
export type MaskCounts = Partial<Record<MaskLabel, number>>;

/** A route's masking (CONTRACT §7): `mask` (detector types) and `mask_fields` (JSON keys). */
export interface MaskPolicy {
  types: readonly DetectorType[];
  /** JSON keys whose values are replaced whatever they hold; matched case-insensitively. */
  fields: readonly string[];
}

/**
 * Masks one response body as it streams. `write` returns what may be sent now (possibly
 * nothing: text that could still turn out to be part of a secret is held back), `end` returns
 * the rest. `counts` grows as bytes are released.
 */
export interface BodyMasker {
  write(chunk: Uint8Array): Uint8Array;
  end(): Uint8Array;
  readonly counts: MaskCounts;
}

/** The label a `mask_fields` value gets. */
export const FIELD_LABEL = '[MASKED:field]';

export function addCount(counts: MaskCounts, label: MaskLabel, n = 1): void {
  if (n > 0) counts[label] = (counts[label] ?? 0) + n;
}
