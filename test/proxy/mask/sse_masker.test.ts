/**
 * Event streams: framing kept (LF, CRLF, CR, comments, id/event/retry lines), `[DONE]` passed
 * after the held text, OpenAI-style chunks masked across events per choice and per tool call,
 * the fast path giving exactly what the parsing path gives, and any byte split of the stream
 * giving the same bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DETECTOR_TYPES } from '../../../src/proxy/mask/detectors.js';
import { createBodyMasker, type MaskPolicy } from '../../../src/proxy/mask/index.js';
import { maskText } from '../../../src/proxy/mask/mask_text.js';
import { createSseMasker, SSE_EVENT_LIMIT } from '../../../src/proxy/mask/sse_masker.js';
import { drive, loadCorpus, splitAt } from './support.js';

const POLICY: MaskPolicy = { types: DETECTOR_TYPES, fields: ['password'] };
const EMAIL = 'jane.doe@example.com';

type Chunk = Record<string, unknown> & { choices: Array<Record<string, unknown>> };

const chunk = (choices: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): Chunk => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1700000000,
  model: 'gpt-4o-mini',
  ...extra,
  choices,
});
const content = (text: string, index = 0, finish: string | null = null) => chunk([{ index, delta: { content: text }, finish_reason: finish }]);
const event = (data: unknown) => `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;

function run(parts: string[], policy = POLICY, fastPath = true) {
  const masker = createSseMasker(policy, { fastPath });
  const { outputs, text } = drive(masker, parts);
  return { outputs, text, counts: masker.counts, stats: masker.stats };
}

/** The data of each event of a masked stream (the stream must end with a blank line). */
function events(stream: string): string[] {
  assert.ok(stream.endsWith('\n\n'), 'the stream ends with a complete event');
  return stream.slice(0, -2).split('\n\n');
}

/** The text of one delta field (or legacy text) of one choice, concatenated over the chunks. */
function streamedText(stream: string, index = 0, pick: (choice: Record<string, any>) => unknown = (c) => c.delta?.content): string {
  let out = '';
  for (const e of events(stream)) {
    if (!e.startsWith('data: {')) continue;
    const c = JSON.parse(e.slice(6)) as Chunk;
    for (const choice of c.choices) if (choice.index === index) out += (pick(choice) as string | undefined) ?? '';
  }
  return out;
}

describe('SSE masker', () => {
  it('a secret split across three events is masked; every event keeps `data: <json>` framing; [DONE] last', () => {
    const { text, counts } = run([event(chunk([{ index: 0, delta: { role: 'assistant' }, finish_reason: null }])), ...['Write to jane', '.doe@exa', 'mple.com', ' today.'].map((t) => event(content(t))), event(content('', 0, 'stop')), 'data: [DONE]\n\n']);
    assert.ok(!text.includes(EMAIL));
    const all = events(text);
    for (const e of all) assert.match(e, /^data: /);
    assert.equal(all.at(-1), 'data: [DONE]');
    assert.equal(streamedText(text), 'Write to [MASKED:email] today.');
    assert.deepEqual(counts, { email: 1 });
  });

  it('the first event leaves with the write that brought it', () => {
    const masker = createSseMasker(POLICY);
    const first = event(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
    assert.equal(Buffer.from(masker.write(Buffer.from(first))).toString(), first);
    // Half an event: nothing yet; the rest: the event.
    const second = event(content('Hello there '));
    assert.equal(Buffer.from(masker.write(Buffer.from(second.slice(0, 30)))).toString(), '');
    assert.equal(Buffer.from(masker.write(Buffer.from(second.slice(30)))).toString(), second);
  });

  it('keeps the framing: CRLF and CR line ends, comments, event/id/retry lines, blank lines', () => {
    for (const eol of ['\r\n', '\r', '\n']) {
      const stream = [`: keep-alive${eol}${eol}`, `event: message${eol}id: 7${eol}retry: 3000${eol}data: ${JSON.stringify(content('Hi jane.doe@example.com ok'))}${eol}${eol}`, `:${eol}data: [DONE]${eol}${eol}`].join('');
      const { text } = run([stream]);
      const expected = stream.replace(JSON.stringify(content('Hi jane.doe@example.com ok')), JSON.stringify(content('Hi [MASKED:email] ')));
      // The held "ok" leaves in a flush chunk before [DONE], with the stream's own line ends.
      const flush = `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: 'ok' }, finish_reason: null }] })}${eol}${eol}`;
      assert.equal(text, expected.replace(`:${eol}data: [DONE]`, `${flush}:${eol}data: [DONE]`), JSON.stringify(eol));
    }
  });

  it('an event whose data has no space after the colon, and one split over several data lines', () => {
    const { text } = run([`data:${JSON.stringify({ note: 'plain jane.doe@example.com' })}\n\n`, 'data: first line\ndata: mail jane.doe@example.com\n\n']);
    assert.equal(text, `data:${JSON.stringify({ note: 'plain [MASKED:email]' })}\n\ndata: first line\ndata: mail [MASKED:email]\n\n`);
  });

  it('[DONE] passes as it came, after the text still held', () => {
    const { text } = run([event(content('ends with jane.doe@example.com')), 'data: [DONE]\n\n']);
    const all = events(text);
    assert.equal(all.length, 3);
    assert.deepEqual(JSON.parse(all[1]!.slice(6)), { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: '[MASKED:email]' }, finish_reason: null }] });
    assert.equal(all[2], 'data: [DONE]');
  });

  it('a body that ends without [DONE] still gets the held text, as a last chunk', () => {
    const { text } = run([event(content('call me at ')), event(content('+1 212 555 ')), event(content('0199'))]);
    assert.equal(streamedText(text), 'call me at [MASKED:phone]');
    // An unterminated last event is closed before the flush chunk is added.
    const cut = run([event(content('a b')), `data: ${JSON.stringify(content(' c d'))}`]).text;
    assert.equal(streamedText(cut), 'a b c d');
  });

  it('the held text joins the chunk that carries finish_reason', () => {
    const { text } = run([event(content('mail jane.doe@')), event(content('example.com')), event(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }])), 'data: [DONE]\n\n']);
    const all = events(text);
    assert.equal(all.length, 4, 'no extra flush chunk');
    assert.deepEqual(JSON.parse(all[2]!.slice(6)).choices, [{ index: 0, delta: { content: '[MASKED:email]' }, finish_reason: 'stop' }]);
  });

  it('several choices are masked independently, interleaved', () => {
    const parts = [
      event(content('A: mail jane', 0)),
      event(content('B: card 4111 1111', 1)),
      event(content('.doe@example.com', 0)),
      event(content(' 1111 1111 done', 1)),
      event(content(' end', 0, 'stop')),
      event(content(' end', 1, 'stop')),
      'data: [DONE]\n\n',
    ];
    const { text, counts } = run(parts);
    assert.equal(streamedText(text, 0), 'A: mail [MASKED:email] end');
    assert.equal(streamedText(text, 1), 'B: card [MASKED:credit_card] done end');
    assert.deepEqual(counts, { email: 1, credit_card: 1 });
  });

  it('tool-call arguments are masked per (choice, tool call), split across events', () => {
    const call = (index: number, args: string, extra: Record<string, unknown> = {}) => chunk([{ index: 0, delta: { tool_calls: [{ index, ...extra, function: { arguments: args } }] }, finish_reason: null }]);
    const parts = [
      event(call(0, '{"to": "jane.d', { id: 'call_1', type: 'function' })),
      event(call(1, '{"card": "4111 1111 ', { id: 'call_2', type: 'function' })),
      event(call(0, 'oe@example.com"}')),
      event(call(1, '1111 1111"}')),
      event(chunk([{ index: 0, delta: {}, finish_reason: 'tool_calls' }])),
      'data: [DONE]\n\n',
    ];
    const { text } = run(parts);
    assert.ok(!text.includes('jane.doe') && !text.includes('4111'));
    const args = (i: number) =>
      events(text)
        .filter((e) => e.startsWith('data: {'))
        .flatMap((e) => (JSON.parse(e.slice(6)) as Chunk).choices.flatMap((c: any) => (c.delta?.tool_calls ?? []) as any[]))
        .filter((tc) => tc.index === i)
        .map((tc) => tc.function?.arguments ?? '')
        .join('');
    assert.equal(args(0), '{"to": "[MASKED:email]"}');
    assert.equal(args(1), '{"card": "[MASKED:credit_card]"}');
    // The other fields of a tool call are kept.
    assert.match(text, /"id":"call_1","type":"function"/);
  });

  it('legacy completions (choices[].text) and reasoning deltas are streamed too', () => {
    const legacy = (t: string, finish: string | null = null) => ({ id: 'cmpl-1', object: 'text_completion', choices: [{ index: 0, text: t, finish_reason: finish }] });
    const a = run([event(legacy('mail jane.d')), event(legacy('oe@example.com now')), event(legacy('', 'stop'))]).text;
    assert.equal(streamedText(a, 0, (c) => c.text), 'mail [MASKED:email] now');
    const reasoning = (t: string) => chunk([{ index: 0, delta: { reasoning_content: t }, finish_reason: null }]);
    const b = run([event(reasoning('the user is jane.d')), event(reasoning('oe@example.com so')), 'data: [DONE]\n\n']).text;
    assert.equal(streamedText(b, 0, (c) => c.delta?.reasoning_content), 'the user is [MASKED:email] so');
  });

  it('JSON data without choices: masked whole, mask_fields applied; other text data masked whole', () => {
    const { text, counts } = run([event({ type: 'status', Password: 'x', note: 'mail jane.doe@example.com' }), 'event: log\ndata: plain text with jane.doe@example.com\n\n']);
    assert.equal(text, `data: {"type":"status","Password":"[MASKED:field]","note":"mail [MASKED:email]"}\n\nevent: log\ndata: plain text with [MASKED:email]\n\n`);
    assert.deepEqual(counts, { field: 1, email: 2 });
  });

  it('mask_fields apply inside chat chunks too, around the streamed text', () => {
    const { text } = run([event(content('hi there', 0, null)), event(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }], { password: 'p' }))]);
    assert.match(text, /"password":"\[MASKED:field\]"/);
  });

  it('a comment or an id line holding a secret is masked (the framing is not changed by it)', () => {
    const { text } = run([': debug jane.doe@example.com\nid: 42\ndata: x\n\n']);
    assert.equal(text, ': debug [MASKED:email]\nid: 42\ndata: x\n\n');
  });

  it('a multi-byte character split anywhere across writes comes out whole', () => {
    const stream = event(content('caf\u00e9 \u65e5\u672c\u8a9e \ud83d\ude00 ')) + event(content('done ', 0, 'stop'));
    const bytes = Buffer.from(stream, 'utf8');
    const expected = run([stream]).text;
    for (let i = 1; i < bytes.length; i++) assert.equal(drive(createSseMasker(POLICY), splitAt(bytes, [i])).text, expected);
    assert.equal(streamedText(expected), 'caf\u00e9 \u65e5\u672c\u8a9e \ud83d\ude00 done ');
  });

  it('an event over SSE_EVENT_LIMIT turns the rest of the body into plain masked text, nothing lost', () => {
    const filler = 'word jane.doe@example.com and more prose here '.repeat(Math.ceil((SSE_EVENT_LIMIT + 1024) / 46));
    const stream = `${event(content('held tail'))}data: ${filler}\n\ndata: [DONE]\n\n`;
    const bytes = Buffer.from(stream, 'utf8');
    const cuts = Array.from({ length: Math.ceil(bytes.length / (1 << 20)) }, (_, i) => i * (1 << 20));
    const masker = createSseMasker(POLICY);
    const { text } = drive(masker, splitAt(bytes, cuts));
    const counts = masker.counts;
    assert.ok(!text.includes(EMAIL));
    const all = text.split('\n\n');
    assert.equal(streamedText(`${all.slice(0, 2).join('\n\n')}\n\n`), 'held tail', 'the held text leaves in a chunk before the fallback');
    assert.equal(text.slice(text.indexOf('data: word')), maskText(`data: ${filler}\n\ndata: [DONE]\n\n`, DETECTOR_TYPES).text);
    assert.ok((counts.email ?? 0) > 300_000);
  });

  it('createBodyMasker picks it for text/event-stream', () => {
    const masker = createBodyMasker(POLICY, 'text/event-stream; charset=utf-8')!;
    assert.equal(drive(masker, [event(content('x jane.doe@example.com ', 0, 'stop'))]).text, event(content('x [MASKED:email] ', 0, 'stop')));
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over generated streams.

const corpusTexts = [...new Set(loadCorpus().map((c) => c.text))].filter((t) => t.length < 400);
const textPiece = fc.oneof(
  fc.constantFrom(...corpusTexts),
  fc.constantFrom('the ', 'model ', 'said', ' hello', '\n', ' ', 'é', '😀', '"quoted"', 'back\\slash', 'tab\t', '4111', ' 1111', 'jane.doe@', 'example.com'),
);
/** A text delivered as deltas of 0-12 chars. */
const deltas = fc.tuple(fc.array(textPiece, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 12 })).map(([parts, sizes]) => {
  const text = parts.join(' ');
  const out: string[] = [];
  let i = 0;
  for (let k = 0; i < text.length; k++) {
    const n = sizes[k % sizes.length]!;
    if (n === 0) out.push(''); // an empty delta, then a real one
    const m = n === 0 ? 1 + (k % 12) : n;
    out.push(text.slice(i, i + m));
    i += m;
  }
  return { text, deltas: out };
});
/** Chunk shapes seen in the wild: plain OpenAI, with logprobs/role/extra members, vLLM-ish usage, a field named in mask_fields. */
const shape = fc.record({
  role: fc.boolean(),
  logprobs: fc.boolean(),
  fingerprint: fc.constantFrom<string | undefined>(undefined, 'fp_44709d6fcb', 'fp jane.doe@example.com'),
  usage: fc.constantFrom(undefined, null),
  extraBefore: fc.constantFrom<Record<string, string> | undefined>(undefined, { service_tier: 'default' }, { password: 'hunter2' }, { id: 'dup' }),
});

function build(d: { deltas: string[] }, s: { role: boolean; logprobs: boolean; fingerprint: string | undefined; usage: null | undefined; extraBefore: Record<string, string> | undefined }, index: number): string[] {
  return d.deltas.map((t, k) => {
    const delta = s.role && k === 0 ? { role: 'assistant', content: t } : { content: t };
    const choice: Record<string, unknown> = { index, delta };
    if (s.logprobs) choice.logprobs = null;
    choice.finish_reason = null;
    const body: Record<string, unknown> = { ...(s.extraBefore ?? {}), id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1700000000, model: 'm' };
    if (s.fingerprint !== undefined) body.system_fingerprint = s.fingerprint;
    body.choices = [choice];
    if (s.usage !== undefined) body.usage = s.usage;
    // A hand-written duplicate `id` member after choices (JSON.parse keeps the last one).
    const json = JSON.stringify(body);
    return s.extraBefore?.id === 'dup' ? `${json.slice(0, -1)},"id":"late"}` : json;
  });
}

describe('SSE masker properties', () => {
  it('the fast path writes exactly what the parsing path writes, counts included', () => {
    let fastChunks = 0;
    fc.assert(
      fc.property(deltas, shape, fc.nat({ max: 3 }), fc.boolean(), (d, s, index, done) => {
        const stream = build(d, s, index).map((j) => `data: ${j}\n\n`);
        if (done) stream.push('data: [DONE]\n\n');
        const fast = run(stream, POLICY, true);
        const slow = run(stream, POLICY, false);
        assert.equal(fast.text, slow.text);
        assert.deepEqual(fast.counts, slow.counts);
        assert.equal(slow.stats.fast, 0);
        fastChunks += fast.stats.fast;
      }),
      { numRuns: 300 },
    );
    assert.ok(fastChunks > 1000, `the fast path was taken ${fastChunks} times`);
  });

  it('the fast path takes the usual content chunk, and leaves other shapes to the parser', () => {
    const usual = run([event(content('a')), event(content('b ')), event(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], { system_fingerprint: 'fp_1' }))]);
    assert.deepEqual(usual.stats, { fast: 3, parsed: 0 });
    const other = run([event(chunk([{ index: 0, delta: { role: 'assistant' }, finish_reason: null }])), event(content('x', 0, 'stop')), event(chunk([{ index: 0, delta: { content: 'x' }, finish_reason: null }], { usage: { total_tokens: 3 } }))]);
    assert.deepEqual(other.stats, { fast: 0, parsed: 3 });
    // mask_fields naming a key the fast path writes itself turns it off.
    assert.deepEqual(run([event(content('a'))], { types: DETECTOR_TYPES, fields: ['Content'] }).stats, { fast: 0, parsed: 1 });
  });

  it('the streamed text of a choice is maskText of its whole text', () => {
    fc.assert(
      fc.property(deltas, shape, (d, s) => {
        const stream = [...build(d, s, 0).map((j) => `data: ${j}\n\n`), 'data: [DONE]\n\n'];
        const { text } = run(stream);
        assert.equal(streamedText(text), maskText(d.text, DETECTOR_TYPES).text);
      }),
      { numRuns: 200 },
    );
  });

  it('any byte split of a stream gives the same bytes as one write', () => {
    fc.assert(
      fc.property(deltas, shape, fc.constantFrom('\n', '\r\n', '\r'), fc.array(fc.nat(), { maxLength: 20 }), (d, s, eol, cuts) => {
        const stream = Buffer.from([': hello', ...build(d, s, 0).map((j) => `data: ${j}`), 'data: [DONE]'].map((l) => `${l}${eol}${eol}`).join(''), 'utf8');
        const whole = drive(createSseMasker(POLICY), [stream]).text;
        const split = drive(createSseMasker(POLICY), splitAt(stream, cuts.map((c) => c % (stream.length + 1)))).text;
        assert.equal(split, whole);
      }),
      { numRuns: 200 },
    );
  });
});
