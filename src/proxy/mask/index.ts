/**
 * TEMPORARY stand-in for the streaming maskers (being built on branch `mask`): buffers the whole
 * body and masks it as text. Replaced by the real module when that branch lands.
 */
import { DETECTOR_TYPES, type DetectorType } from './detectors.js';
import { maskText } from './mask_text.js';

export type MaskLabel = DetectorType | 'field';
export type MaskCounts = Partial<Record<MaskLabel, number>>;
export interface MaskPolicy {
  types: readonly DetectorType[];
  fields: readonly string[];
}
export interface BodyMasker {
  write(chunk: Uint8Array): Uint8Array;
  end(): Uint8Array;
  readonly counts: MaskCounts;
}

export function isMaskType(name: string): name is DetectorType {
  return (DETECTOR_TYPES as readonly string[]).includes(name);
}

export function createBodyMasker(policy: MaskPolicy, contentType: string | undefined): BodyMasker | null {
  if (!/^(text\/|application\/(json|[a-z.+-]*\+json)\b)/i.test(contentType ?? '')) return null;
  const chunks: Buffer[] = [];
  const counts: MaskCounts = {};
  return {
    counts,
    write(chunk) {
      chunks.push(Buffer.from(chunk));
      return new Uint8Array(0);
    },
    end() {
      const result = maskText(Buffer.concat(chunks).toString('utf8'), policy.types);
      for (const [k, v] of Object.entries(result.counts)) if (v > 0) counts[k as MaskLabel] = v;
      return Buffer.from(result.text);
    },
  };
}
