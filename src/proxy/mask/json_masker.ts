/**
 * A JSON body (`application/json`, `*+json`): buffered (up to {@link JSON_BUFFER_LIMIT}),
 * parsed, masked value by value ({@link JsonValueMasker}) and serialized again. A body larger
 * than the limit, or one that does not parse, is masked as streaming text over its raw bytes.
 */
import { utf8Codec } from './content_type.js';
import { JsonValueMasker } from './json_value.js';
import { createTextMasker } from './text_masker.js';
import type { BodyMasker, MaskCounts, MaskPolicy } from './types.js';

/** Largest JSON body parsed whole, in bytes (16 MiB). */
export const JSON_BUFFER_LIMIT = 16 * 1024 * 1024;

const EMPTY = new Uint8Array(0);

export function createJsonMasker(policy: MaskPolicy, limit = JSON_BUFFER_LIMIT): BodyMasker {
  const counts: MaskCounts = {};
  let chunks: Buffer[] = [];
  let size = 0;
  let fallback: BodyMasker | null = null;

  /** From here on, the body is streaming text: what was buffered goes first. */
  const toText = (): BodyMasker => {
    const text = createTextMasker(policy, utf8Codec(), counts);
    fallback = text;
    return text;
  };

  return {
    counts,
    write(chunk) {
      if (fallback !== null) return fallback.write(chunk);
      size += chunk.length;
      if (size <= limit) {
        chunks.push(Buffer.from(chunk));
        return EMPTY;
      }
      const buffered = Buffer.concat([...chunks, chunk]);
      chunks = [];
      return toText().write(buffered);
    },
    end() {
      if (fallback !== null) return fallback.end();
      const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      chunks = [];
      if (policy.types.length === 0 && !mayNameField(raw, policy.fields)) return raw;
      let value: unknown;
      try {
        value = JSON.parse(raw.toString('utf8'));
      } catch {
        return textOf(toText(), raw);
      }
      // Counted into a scratch object first: a fallback must not count twice.
      const scratch: MaskCounts = {};
      let out: string;
      try {
        out = new JsonValueMasker(policy).serialize(value, scratch);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        return textOf(toText(), raw); // nesting deeper than the stack
      }
      for (const [label, n] of Object.entries(scratch)) counts[label as keyof MaskCounts] = n;
      return Buffer.from(out, 'utf8');
    },
  };
}

/**
 * False when no key of this JSON text can be one of `fields` (matched as JsonValueMasker does,
 * on the key's lower case). Without a `\\u` escape in the text, only a char JSON must escape
 * (`"`, `\\`, a control char) or may (`/`) is written differently from what it reads as, so a
 * key that is a field (none of those in it) appears quoted as it reads: the text's lower case
 * holds `"<field>"`. A policy of fields only then leaves a body that names none as it came,
 * without parsing it (what the record does with an answer the route has masked already).
 */
function mayNameField(raw: Buffer, fields: readonly string[]): boolean {
  const text = raw.toString('utf8');
  if (text.includes('\\u')) return true;
  const lower = text.toLowerCase();
  return fields.some((f) => /["\\/\u0000-\u001f]/.test(f) || lower.includes(`"${f.toLowerCase()}"`));
}

function textOf(masker: BodyMasker, raw: Uint8Array): Uint8Array {
  return Buffer.concat([masker.write(raw), masker.end()]);
}
