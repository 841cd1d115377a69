/**
 * Response masking for the proxy (CONTRACT §7): picks the masker for a body's Content-Type.
 *
 * - JSON (`application/json`, `*+json`): parsed whole, values masked, `mask_fields` applied
 *   (json_masker.ts); too large or not JSON: streaming text.
 * - `text/event-stream`: event by event, OpenAI-style chat chunks with one streaming masker per
 *   choice and tool call, so a secret split across events is masked (sse_masker.ts).
 * - Other text (`text/*`, NDJSON, XML, YAML, form data, ...) and a missing Content-Type:
 *   streaming text, exactly as `maskText` would mask the whole body (text_stream.ts).
 * - Anything else (images, audio, octet-stream, ...): null, passed through.
 */
import { DETECTOR_TYPES, type DetectorType } from './detectors.js';
import { classifyContentType, textCodec } from './content_type.js';
import { createJsonMasker } from './json_masker.js';
import { createSseMasker } from './sse_masker.js';
import { createTextMasker } from './text_masker.js';
import type { BodyMasker, MaskPolicy } from './types.js';

export type { BodyMasker, MaskCounts, MaskLabel, MaskPolicy } from './types.js';

export function isMaskType(name: string): name is DetectorType {
  return (DETECTOR_TYPES as readonly string[]).includes(name);
}

/** Returned for a policy that masks nothing: the body passes as it came. */
function passThrough(): BodyMasker {
  return { counts: {}, write: (chunk) => chunk, end: () => new Uint8Array(0) };
}

/**
 * The masker for a response body of this Content-Type, or null when the body is not text
 * (pass it through untouched). Each call returns a fresh masker for one body.
 */
export function createBodyMasker(policy: MaskPolicy, contentType: string | undefined): BodyMasker | null {
  const type = classifyContentType(contentType);
  if (type === null) return null;
  if (policy.types.length === 0 && policy.fields.length === 0) return passThrough();
  switch (type.kind) {
    case 'json':
      return createJsonMasker(policy);
    case 'sse':
      return createSseMasker(policy);
    case 'text':
      return createTextMasker(policy, textCodec(type.charset));
  }
}
