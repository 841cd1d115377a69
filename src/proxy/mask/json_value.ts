/**
 * Masking of a parsed JSON value, serialized as it is walked (CONTRACT §7): a key named in
 * `mask_fields` (case-insensitive) has its value, whatever it is, replaced by `[MASKED:field]`;
 * every other string, and every key, goes through the detectors.
 */
import { MAYBE_SECRET, maskString } from './mask_string.js';
import { addCount, FIELD_LABEL, type MaskCounts, type MaskLabel, type MaskPolicy } from './types.js';

const FIELD_JSON = JSON.stringify(FIELD_LABEL);

/** A string already masked (released by a streaming masker): serialized as it is. */
export class Released {
  constructor(readonly text: string) {}
}

/** Strings remembered per walker (keys, ids, model names repeat in every element or chunk). */
const MEMO_ENTRIES = 512;
/** Longest string remembered, in chars. */
const MEMO_MAX_CHARS = 512;

interface Memo {
  text: string;
  counts: Array<[MaskLabel, number]>;
}

/** A key, as the walker writes it: masked and quoted, with the colon; and whether it is a mask_fields key. */
interface KeyMemo {
  json: string;
  field: boolean;
  counts: Array<[MaskLabel, number]>;
}

/** Keys remembered per policy (an API's key set is small; past this, the memo starts over). */
const KEY_MEMO_ENTRIES = 1024;
/** Longest key remembered, in chars. */
const KEY_MEMO_MAX_CHARS = 128;

/**
 * Keys, shared by every body masked with the same policy object: an API writes the same few
 * keys in every answer (`finish_reason`, `prompt_tokens`, ...), each costing a detector pass
 * otherwise. Only keys that mask to themselves are kept, so no secret outlives its body here.
 */
const SHARED_KEYS = new WeakMap<MaskPolicy, Map<string, KeyMemo>>();

export class JsonValueMasker {
  private readonly fields: ReadonlySet<string>;
  /** Strings remembered by this walker, when it walks many documents (a stream's events). */
  private readonly memo: Map<string, Memo> | null;
  private readonly keys: Map<string, KeyMemo>;
  /** Where the current serialize() counts. */
  private counts: MaskCounts = {};

  /**
   * `rememberStrings` for a walker that serializes many small documents repeating the same
   * strings (a stream's chunks: id, model, fingerprint); a single document gains nothing from it.
   */
  constructor(
    private readonly policy: MaskPolicy,
    opts: { rememberStrings?: boolean } = {},
  ) {
    this.fields = new Set(policy.fields.map((f) => f.toLowerCase()));
    this.memo = opts.rememberStrings ? new Map() : null;
    let keys = SHARED_KEYS.get(policy);
    if (keys === undefined) SHARED_KEYS.set(policy, (keys = new Map()));
    this.keys = keys;
  }

  /** Whether `key` is one of `mask_fields`. */
  isField(key: string): boolean {
    return this.fields.size > 0 && this.fields.has(key.toLowerCase());
  }

  /**
   * The masked value as JSON text (what JSON.stringify would write for the masked value, with
   * duplicate keys that masking may create kept apart), counting into `counts`. Throws
   * RangeError on nesting too deep for the stack; callers fall back to text masking (and should
   * count into a scratch object until serialize returns).
   */
  serialize(value: unknown, counts: MaskCounts): string {
    this.counts = counts;
    return this.value(value);
  }

  /**
   * maskString, remembered: the detectors cost microseconds even on a short string, and a
   * stream's chunks repeat the same id, model and fingerprint in every event.
   */
  private mask(text: string): string {
    if (this.policy.types.length === 0) return text;
    if (this.memo === null) return maskString(text, this.policy.types, this.counts);
    const hit = this.memo.get(text);
    if (hit !== undefined) {
      for (const [label, n] of hit.counts) addCount(this.counts, label, n);
      return hit.text;
    }
    if (!MAYBE_SECRET.test(text)) {
      if (text.length <= MEMO_MAX_CHARS && this.memo.size < MEMO_ENTRIES) this.memo.set(text, { text, counts: [] });
      return text;
    }
    const counts: MaskCounts = {};
    const masked = maskString(text, this.policy.types, counts);
    for (const [label, n] of Object.entries(counts) as Array<[MaskLabel, number]>) addCount(this.counts, label, n);
    if (text.length <= MEMO_MAX_CHARS) {
      if (this.memo.size >= MEMO_ENTRIES) this.memo.clear();
      this.memo.set(text, { text: masked, counts: Object.entries(counts) as Array<[MaskLabel, number]> });
    }
    return masked;
  }

  private value(value: unknown): string {
    switch (typeof value) {
      case 'string':
        return JSON.stringify(this.mask(value));
      case 'number':
        return this.number(value);
      case 'object':
        if (value === null) return 'null';
        if (value instanceof Released) return JSON.stringify(value.text);
        if (Array.isArray(value)) {
          let out = '[';
          for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + this.value(value[i]);
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
      const k = this.key(key);
      for (const [label, n] of k.counts) addCount(this.counts, label, n);
      out += first ? k.json : `,${k.json}`;
      first = false;
      if (k.field) {
        addCount(this.counts, 'field');
        out += FIELD_JSON;
      } else {
        out += this.value(value[key]);
      }
    }
    return `${out}}`;
  }

  private key(key: string): KeyMemo {
    const hit = this.keys.get(key);
    if (hit !== undefined) return hit;
    const counts: MaskCounts = {};
    const masked = this.policy.types.length === 0 ? key : maskString(key, this.policy.types, counts);
    const memo = { json: `${JSON.stringify(masked)}:`, field: this.isField(key), counts: Object.entries(counts) as Array<[MaskLabel, number]> };
    if (masked === key && key.length <= KEY_MEMO_MAX_CHARS) {
      if (this.keys.size >= KEY_MEMO_ENTRIES) this.keys.clear();
      this.keys.set(key, memo);
    }
    return memo;
  }

  /**
   * A card, SSN or phone number sent as a JSON number is masked too (it becomes the label
   * string): only integers of 9+ digits can hold one, and only those exactly representable
   * (JSON.parse has already rounded the others).
   */
  private number(n: number): string {
    const text = JSON.stringify(n);
    if (!Number.isSafeInteger(n) || Math.abs(n) < 1e8 || this.policy.types.length === 0) return text;
    const masked = this.mask(text);
    return masked === text ? text : JSON.stringify(masked);
  }
}
