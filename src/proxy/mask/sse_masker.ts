/**
 * A `text/event-stream` body (WHATWG HTML, "Server-sent events"): parsed into events as it
 * arrives and written back event by event, with the framing it came with (line terminators,
 * comments, `event:`/`id:`/`retry:` lines, blank lines). Never a whole event is held: an event
 * leaves as soon as its blank line has arrived, with the text inside it that is safe to release.
 *
 * - OpenAI-style chat chunks (`data:` JSON with a `choices` array): one streaming text masker
 *   per choice `index` for each text delta field (`delta.content`, `delta.reasoning_content`,
 *   `delta.reasoning`, `delta.refusal`, legacy `choices[].text`) and per (choice, tool-call
 *   index) for `delta.tool_calls[].function.arguments`. Each delta's text is replaced by what
 *   its masker releases (possibly ""), every other field is kept (its strings masked whole, and
 *   `mask_fields` applied). A secret split across events is therefore masked. A chunk with a
 *   `finish_reason` gets its choice's held text appended to its own; at `data: [DONE]` or at
 *   the end of the body, text still held leaves as one more chunk modelled on the last one
 *   (same id, object, created, model, system_fingerprint; `finish_reason: null`) before it.
 * - Any other `data:` (JSON without `choices`, or not JSON): masked as a whole, like a JSON body
 *   or as text.
 * - Comments and the other fields are passed through with their text masked whole (only a
 *   detected secret changes, so the framing stays).
 */
import { JsonValueMasker, Released } from './json_value.js';
import { maskString } from './mask_string.js';
import { TextStreamMasker } from './text_stream.js';
import { Utf8Stream } from './utf8_stream.js';
import type { BodyMasker, MaskCounts, MaskPolicy } from './types.js';

/** Delta fields streamed as text. */
const DELTA_TEXT_FIELDS = ['content', 'reasoning_content', 'reasoning', 'refusal'] as const;
/** Top-level fields of a chunk that the synthetic flush chunk copies. */
const MODEL_FIELDS = ['id', 'object', 'created', 'model', 'system_fingerprint'] as const;
/** Keys the fast path writes itself: it is off when `mask_fields` names one of them. */
const FAST_PATH_KEYS = ['choices', 'index', 'delta', 'role', 'content', 'logprobs', 'finish_reason'];

/**
 * An event larger than this (16 MiB) is not parsed: the rest of the body is masked as plain
 * streaming text (no secret leaves; the stream's events may no longer parse as chunks).
 */
export const SSE_EVENT_LIMIT = 16 * 1024 * 1024;

// The fast path: the usual shape of a content chunk, in compact JSON, recognised without
// parsing it. Members before and after `choices` may only hold scalars under identifier keys.
const STR = String.raw`"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9A-Fa-f]{4})*"`;
const NUM = String.raw`-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?`;
const MEMBER = String.raw`"[A-Za-z_][A-Za-z0-9_]*":(?:${STR}|${NUM}|null|true|false)`;
/** Where the usual chunk's choices begin; what comes before it must be members (checked once per shape). */
const CHOICES_AT = '"choices":[{"index":';
/** The usual chunk from CHOICES_AT on (sticky: matched at that position). */
const CONTENT_CHUNK = new RegExp(
  String.raw`"choices":\[\{"index":(0|[1-9][0-9]{0,7}),"delta":\{("role":"assistant",)?"content":(${STR})\}(,"logprobs":null)?,"finish_reason":null\}\]((?:,${MEMBER})*)\}$`,
  'y',
);
const MEMBERS_BEFORE = new RegExp(String.raw`^(?:${MEMBER},)*$`);
const MEMBERS = new RegExp(MEMBER, 'g');

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface Line {
  text: string;
  /** '\n', '\r\n', '\r', or '' for a last line the body ended without terminating. */
  eol: string;
}

/** The streaming maskers of one choice. */
class ChoiceStreams {
  readonly fields = new Map<string, TextStreamMasker>();
  readonly tools = new Map<number, TextStreamMasker>();
}

/** Masked members around `choices`, for the fast path (null: this shape must take the slow path). */
interface Members {
  before: string;
  after: string;
  counts: MaskCounts;
  /** Nothing to count. */
  uncounted: boolean;
  /** Masking left the members exactly as they came: the event is written back as it came, but for its content. */
  unchanged: boolean;
}

/** Chars from the start of CONTENT_CHUNK's match to its `index` value, and from there to the content (without `index` and `role`). */
const INDEX_OFFSET = CHOICES_AT.length;
const CONTENT_OFFSET = ',"delta":{'.length + '"content":'.length;

export interface SseMaskerOptions {
  /** Off: every chunk is parsed (for tests comparing both paths). Default on. */
  fastPath?: boolean;
}

/** Events by how their data was handled (for tests and the benchmark). */
export interface SseStats {
  /** Content chunks taken by the fast path. */
  fast: number;
  /** Data parsed as JSON (chat chunks of other shapes, other JSON). */
  parsed: number;
}

export function createSseMasker(policy: MaskPolicy, options: SseMaskerOptions = {}): BodyMasker & { readonly stats: SseStats } {
  return new SseMasker(policy, options.fastPath ?? true);
}

class SseMasker implements BodyMasker {
  readonly counts: MaskCounts = {};
  readonly stats: SseStats = { fast: 0, parsed: 0 };
  private readonly decoder = new Utf8Stream();
  private readonly json: JsonValueMasker;
  private readonly fast: boolean;
  /** An incomplete line. */
  private rest = '';
  /** The lines of the event being read (reused from event to event). */
  private readonly event: Line[] = [];
  private eventSize = 0;
  /** The last line terminator seen, for the events this masker adds. */
  private eol = '\n';
  private readonly choices = new Map<number, ChoiceStreams>();
  /** Where the last chunk's model fields are: a parsed chunk, or the raw members of a fast-path one. */
  private model: Json | { before: string; after: string } | null = null;
  private cachedBefore = '';
  private cachedAfter = '';
  private cached: Members | null = null;
  /** Set when an event outgrew SSE_EVENT_LIMIT: the rest of the body is plain text. */
  private fallback: TextStreamMasker | null = null;

  constructor(
    private readonly policy: MaskPolicy,
    fastPath: boolean,
  ) {
    this.json = new JsonValueMasker(policy, { rememberStrings: true });
    this.fast = fastPath && !FAST_PATH_KEYS.some((k) => this.json.isField(k));
  }

  write(chunk: Uint8Array): Uint8Array {
    return Buffer.from(this.feed(this.decoder.decode(chunk), false), 'utf8');
  }

  end(): Uint8Array {
    return Buffer.from(this.feed(this.decoder.decode(new Uint8Array(0), true), true), 'utf8');
  }

  private feed(text: string, final: boolean): string {
    if (this.fallback !== null) return this.fallback.write(text) + (final ? this.fallback.end() : '');
    const out: string[] = [];
    const s = this.rest + text;
    let pos = 0;
    // `rest` holds no line terminator (a CR only as its last char): search from there.
    const from = Math.max(0, this.rest.length - 1);
    let lf = s.indexOf('\n', from);
    let cr = s.indexOf('\r', from);
    for (;;) {
      if (lf !== -1 && lf < pos) lf = s.indexOf('\n', pos);
      if (cr !== -1 && cr < pos) cr = s.indexOf('\r', pos);
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        // A CR at the very end may be the first half of a CRLF.
        if (cr + 1 === s.length && !final) break;
        end = cr;
        next = s.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
      } else if (lf !== -1) {
        end = lf;
        next = lf + 1;
      } else {
        break;
      }
      const eol = next - end === 2 ? '\r\n' : s.charCodeAt(end) === 10 ? '\n' : '\r';
      this.eol = eol;
      if (end === pos) {
        this.dispatch(this.event, out);
        out.push(eol);
        this.event.length = 0;
        this.eventSize = 0;
        pos = next;
      } else {
        this.event.push({ text: s.slice(pos, end), eol });
        this.eventSize += next - pos;
        pos = next;
        if (this.eventSize > SSE_EVENT_LIMIT) return out.join('') + this.toText(s.slice(pos), final);
      }
    }
    this.rest = s.slice(pos);
    if (this.rest.length + this.eventSize > SSE_EVENT_LIMIT) return out.join('') + this.toText('', final);
    if (final) this.finish(out);
    return out.join('');
  }

  /** End of body: a last line or event without its terminator, then whatever is still held. */
  private finish(out: string[]): void {
    if (this.rest !== '') this.event.push({ text: this.rest, eol: '' });
    this.rest = '';
    const event = this.event.splice(0);
    if (event.length === 0) {
      this.flush(out);
      return;
    }
    const before = out.length;
    this.dispatch(event, out);
    const held: string[] = [];
    this.flush(held);
    if (held.length === 0) return;
    // The flush chunk must not run into the unterminated event.
    const tail = out.slice(before).join('');
    if (!tail.endsWith('\n') && !tail.endsWith('\r')) out.push(this.eol);
    out.push(this.eol, ...held);
  }

  /** The rest of the body as plain text (an event too large to parse). */
  private toText(rest: string, final: boolean): string {
    const out: string[] = [];
    this.flush(out);
    const raw = this.event.map((l) => l.text + l.eol).join('') + rest;
    this.event.length = 0;
    this.rest = '';
    this.fallback = new TextStreamMasker(this.policy.types, this.counts);
    out.push(this.fallback.write(raw));
    if (final) out.push(this.fallback.end());
    return out.join('');
  }

  private dispatch(lines: Line[], out: string[]): void {
    if (lines.length === 0) return;
    const only = lines.length === 1 ? lines[0] : undefined;
    if (this.fast && only !== undefined && only.text.startsWith('data: {')) {
      const chunk = this.fastChunk(only.text.slice(6));
      if (chunk !== null) {
        this.stats.fast++;
        out.push('data: ', chunk, only.eol);
        return;
      }
    }
    let first = -1;
    const values: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!.text;
      if (!text.startsWith('data')) continue;
      if (text.length > 4 && text.charCodeAt(4) !== 58) continue; // `data…` but another field name
      if (first === -1) first = i;
      const value = text.slice(5);
      values.push(value.startsWith(' ') ? value.slice(1) : value);
    }
    if (first === -1) {
      for (const l of lines) out.push(this.maskLine(l.text), l.eol);
      return;
    }
    const data = values.join('\n');
    if (data === '[DONE]') this.flush(out);
    const masked = data === '[DONE]' ? data : this.maskData(data);
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      const isData = l.text.startsWith('data') && (l.text.length === 4 || l.text.charCodeAt(4) === 58);
      if (!isData) {
        out.push(this.maskLine(l.text), l.eol);
      } else if (masked === data) {
        out.push(l.text, l.eol);
      } else if (i === first) {
        const prefix = l.text.startsWith('data: ') ? 'data: ' : 'data:';
        if (masked.includes('\n')) out.push(masked.split('\n').map((part) => prefix + part).join(l.eol || this.eol), l.eol);
        else out.push(prefix, masked, l.eol);
      }
    }
  }

  private maskLine(text: string): string {
    return maskString(text, this.policy.types, this.counts);
  }

  /** One event's data, masked: a chat chunk, another JSON value, or text. */
  private maskData(data: string): string {
    const lead = data.trimStart().charCodeAt(0);
    if (lead !== 123 && lead !== 91) return maskString(data, this.policy.types, this.counts);
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      return maskString(data, this.policy.types, this.counts);
    }
    this.stats.parsed++;
    if (isObject(value) && Array.isArray(value.choices)) return this.chatChunk(value, value.choices);
    const scratch: MaskCounts = {};
    try {
      const out = this.json.serialize(value, scratch);
      this.merge(scratch);
      return out;
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      return maskString(data, this.policy.types, this.counts);
    }
  }

  private merge(counts: MaskCounts): void {
    for (const [label, n] of Object.entries(counts)) this.counts[label as keyof MaskCounts] = (this.counts[label as keyof MaskCounts] ?? 0) + n;
  }

  private streams(index: number): ChoiceStreams {
    let st = this.choices.get(index);
    if (st === undefined) this.choices.set(index, (st = new ChoiceStreams()));
    return st;
  }

  private fieldStream(st: ChoiceStreams, field: string): TextStreamMasker {
    let m = st.fields.get(field);
    if (m === undefined) st.fields.set(field, (m = new TextStreamMasker(this.policy.types, this.counts)));
    return m;
  }

  private toolStream(st: ChoiceStreams, index: number): TextStreamMasker {
    let m = st.tools.get(index);
    if (m === undefined) st.tools.set(index, (m = new TextStreamMasker(this.policy.types, this.counts)));
    return m;
  }

  /** An OpenAI-style chunk: its delta texts through their streaming maskers, the rest masked whole. */
  private chatChunk(chunk: Json, choices: unknown[]): string {
    for (let i = 0; i < choices.length; i++) {
      const choice = choices[i];
      if (!isObject(choice)) continue;
      const index = typeof choice.index === 'number' ? choice.index : i;
      const st = this.streams(index);
      const delta = choice.delta;
      if (isObject(delta)) {
        for (const f of DELTA_TEXT_FIELDS) {
          const v = delta[f];
          if (typeof v === 'string') delta[f] = new Released(this.fieldStream(st, f).write(v));
        }
        const calls = delta.tool_calls;
        if (Array.isArray(calls)) {
          for (let j = 0; j < calls.length; j++) {
            const call = calls[j];
            const fn = isObject(call) ? call.function : undefined;
            if (!isObject(call) || !isObject(fn) || typeof fn.arguments !== 'string') continue;
            fn.arguments = new Released(this.toolStream(st, typeof call.index === 'number' ? call.index : j).write(fn.arguments));
          }
        }
      }
      if (typeof choice.text === 'string') choice.text = new Released(this.fieldStream(st, 'text').write(choice.text));
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        this.choices.delete(index);
        this.appendHeld(choice, st);
      }
    }
    this.model = chunk;
    return this.json.serialize(chunk, this.counts);
  }

  /** Adds what a choice's maskers still hold to its chunk (the choice finished). */
  private appendHeld(choice: Json, st: ChoiceStreams): void {
    for (const [field, masker] of st.fields) {
      const tail = masker.end();
      if (tail === '') continue;
      if (field === 'text') {
        choice.text = new Released(textOf(choice.text) + tail);
        continue;
      }
      if (!isObject(choice.delta)) choice.delta = {};
      const delta = choice.delta as Json;
      delta[field] = new Released(textOf(delta[field]) + tail);
    }
    for (const [index, masker] of st.tools) {
      const tail = masker.end();
      if (tail === '') continue;
      if (!isObject(choice.delta)) choice.delta = {};
      const delta = choice.delta as Json;
      if (!Array.isArray(delta.tool_calls)) delta.tool_calls = [];
      const calls = delta.tool_calls as unknown[];
      const call = calls.find((c, j) => isObject(c) && (typeof c.index === 'number' ? c.index : j) === index);
      const fn = isObject(call) ? call.function : undefined;
      if (isObject(call) && isObject(fn)) fn.arguments = new Released(textOf(fn.arguments) + tail);
      else if (isObject(call)) call.function = { arguments: new Released(tail) };
      else calls.push({ index, function: { arguments: new Released(tail) } });
    }
  }

  /** Text still held by any choice, as one more chunk modelled on the last one. */
  private flush(out: string[]): void {
    const choices: Json[] = [];
    for (const [index, st] of [...this.choices].sort(([a], [b]) => a - b)) {
      const choice: Json = { index };
      this.appendHeld(choice, st);
      if (choice.delta !== undefined || choice.text !== undefined) choices.push({ ...choice, finish_reason: null });
    }
    this.choices.clear();
    if (choices.length === 0) return;
    const model = this.modelMembers();
    out.push(`data: {${model}${model === '' ? '' : ','}"choices":${this.json.serialize(choices, this.counts)}}`, this.eol, this.eol);
  }

  /** The last chunk's id, object, created, model and system_fingerprint, masked, as JSON members (not counted again). */
  private modelMembers(): string {
    let source: Json = {};
    const m = this.model;
    if (m !== null && 'before' in m && typeof m.before === 'string' && typeof m.after === 'string') {
      const members = [m.before.slice(0, -1), m.after.slice(1)].filter((x) => x !== '').join(',');
      source = JSON.parse(`{${members}}`) as Json;
    } else if (m !== null) {
      source = m as Json;
    }
    const picked: Json = {};
    for (const k of MODEL_FIELDS) if (Object.hasOwn(source, k)) picked[k] = source[k];
    return this.json.serialize(picked, {}).slice(1, -1);
  }

  /**
   * The fast path for the usual content chunk: recognised by {@link CONTENT_CHUNK}, its content
   * taken from the raw text and the rest written from cached masked members. Gives exactly what
   * the parsing path gives (checked by test/proxy/mask/sse_masker.test.ts); null when the event
   * has another shape.
   */
  private fastChunk(json: string): string | null {
    const at = json.indexOf(CHOICES_AT);
    if (at < 1 || (at > 1 && json.charCodeAt(at - 1) !== 44)) return null;
    CONTENT_CHUNK.lastIndex = at;
    const m = CONTENT_CHUNK.exec(json);
    if (m === null) return null;
    const index = m[1]!;
    const role = m[2] ?? '';
    const content = m[3]!;
    const after = m[5] ?? '';
    const before = json.slice(1, at);
    const members = this.members(before, after);
    if (members === null) return null;
    if (!members.uncounted) this.merge(members.counts);
    const escaped = content.includes('\\');
    const text = escaped ? (JSON.parse(content) as string) : content.slice(1, -1);
    const released = this.fieldStream(this.streams(Number(index)), 'content').write(text);
    this.model = { before, after };
    if (members.unchanged) {
      // What the parsing path writes is this very text but for the content string.
      if (released === text && !escaped) return json;
      const start = at + INDEX_OFFSET + index.length + role.length + CONTENT_OFFSET;
      return json.slice(0, start) + JSON.stringify(released) + json.slice(start + content.length);
    }
    return `{${members.before}"choices":[{"index":${index},"delta":{${role}"content":${JSON.stringify(released)}}${m[4] ?? ''},"finish_reason":null}]${members.after}}`;
  }

  /**
   * The members around `choices` (`before` ends with a comma, `after` starts with one), masked;
   * null when they are not plain members. Cached for the last pair seen: they repeat in every
   * chunk of a stream.
   */
  private members(before: string, after: string): Members | null {
    if (before === this.cachedBefore && after === this.cachedAfter) return this.cached;
    this.cachedBefore = before;
    this.cachedAfter = after;
    this.cached = null;
    if (!MEMBERS_BEFORE.test(before)) return null;
    const head = JSON.parse(`{${before.slice(0, -1)}}`) as Json;
    const tail = JSON.parse(`{${after.slice(1)}}`) as Json;
    const headKeys = Object.keys(head);
    const tailKeys = Object.keys(tail);
    const count = (before.match(MEMBERS)?.length ?? 0) + (after.match(MEMBERS)?.length ?? 0);
    // Duplicate keys collapse when parsed, and a second `choices` would be the one a client reads.
    if (headKeys.length + tailKeys.length !== count || [...headKeys, ...tailKeys].includes('choices') || headKeys.some((k) => Object.hasOwn(tail, k))) return null;
    const counts: MaskCounts = {};
    const h = this.json.serialize(head, counts).slice(1, -1);
    const t = this.json.serialize(tail, counts).slice(1, -1);
    const masked = { before: h === '' ? '' : `${h},`, after: t === '' ? '' : `,${t}` };
    this.cached = { ...masked, counts, uncounted: Object.keys(counts).length === 0, unchanged: masked.before === before && masked.after === after };
    return this.cached;
  }
}

function textOf(v: unknown): string {
  if (v instanceof Released) return v.text;
  return typeof v === 'string' ? v : '';
}
