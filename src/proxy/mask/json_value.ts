/**
 * Masking of a parsed JSON value, serialized as it is walked (CONTRACT §7): a key named in
 * `mask_fields` (case-insensitive) has its value, whatever it is, replaced by `[MASKED:field]`;
 * every other string, and every key, goes through the detectors.
 */
import { maskString } from './mask_string.js';
import { addCount, FIELD_LABEL, type MaskCounts, type MaskPolicy } from './types.js';

const FIELD_JSON = JSON.stringify(FIELD_LABEL);

/** A string already masked (released by a streaming masker): serialized as it is. */
export class Released {
  constructor(readonly text: string) {}
}

export class JsonValueMasker {
  private readonly fields: ReadonlySet<string>;

  constructor(
    private readonly policy: MaskPolicy,
    private readonly counts: MaskCounts,
  ) {
    this.fields = new Set(policy.fields.map((f) => f.toLowerCase()));
  }

  /** Whether `key` is one of `mask_fields`. */
  isField(key: string): boolean {
    return this.fields.size > 0 && this.fields.has(key.toLowerCase());
  }

  /**
   * The masked value as JSON text (what JSON.stringify would write for the masked value, with
   * duplicate keys that masking may create kept apart). Throws RangeError on nesting too deep
   * for the stack; callers fall back to text masking.
   */
  serialize(value: unknown): string {
    switch (typeof value) {
      case 'string':
        return JSON.stringify(maskString(value, this.policy.types, this.counts));
      case 'number':
        return this.number(value);
      case 'object':
        if (value === null) return 'null';
        if (value instanceof Released) return JSON.stringify(value.text);
        if (Array.isArray(value)) {
          let out = '[';
          for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + this.serialize(value[i]);
          return `${out}]`;
        }
        return this.object(value as Record<string, unknown>);
      default:
        // boolean; JSON.parse gives nothing else.
        return JSON.stringify(value) ?? 'null';
    }
  }

  private object(value: Record<string, unknown>): string {
    let out = '{';
    let first = true;
    for (const key of Object.keys(value)) {
      out += `${first ? '' : ','}${JSON.stringify(maskString(key, this.policy.types, this.counts))}:`;
      first = false;
      if (this.isField(key)) {
        addCount(this.counts, 'field');
        out += FIELD_JSON;
      } else {
        out += this.serialize(value[key]);
      }
    }
    return `${out}}`;
  }

  /**
   * A card, SSN or phone number sent as a JSON number is masked too (it becomes the label
   * string): only integers of 9+ digits can hold one, and only those exactly representable
   * (JSON.parse has already rounded the others).
   */
  private number(n: number): string {
    const text = JSON.stringify(n);
    if (!Number.isSafeInteger(n) || Math.abs(n) < 1e8 || this.policy.types.length === 0) return text;
    const masked = maskString(text, this.policy.types, this.counts);
    return masked === text ? text : JSON.stringify(masked);
  }
}
