/**
 * Row "mask stream (SSE)": how fast the proxy masks an OpenAI-style chat stream. About 8 MiB of
 * `data: {chunk}` events whose deltas are 3-12 chars of prose, with a secret of one of the ten
 * types planted every ~4 KiB of stream (so split across deltas), written through
 * createBodyMasker (all ten types, the contract's mask_fields) in 16 KiB chunks, in process.
 * The output is checked: no planted secret may survive, and every one must be counted.
 *
 * Rows for context (no target refers to them):
 * - "mask stream (SSE, parsing every event)": the same with the masker's fast path off, so every
 *   chunk is JSON.parse'd and serialized again;
 * - "SSE parse+stringify per event (no masking)": decode, split into events, JSON.parse and
 *   JSON.stringify each, encode: the floor of any masker that re-serializes every event;
 * - "SSE pass-through copy": each 16 KiB chunk copied, as the proxy does without masking.
 *
 * Each value is the median of 7 timed passes after 2 warm-up passes, in MB/s (10^6 bytes of
 * input per second); every pass is in `details`.
 */
import { performance } from 'node:perf_hooks';
import type { MaskCounts, MaskPolicy } from '../../src/proxy/mask/index.js';
import { shipped } from '../support/shipped.js';
import type { BenchContext, MeasuredRow } from '../support/types.js';

const { DETECTOR_TYPES } = await shipped<typeof import('../../src/proxy/mask/detectors.js')>('proxy/mask/detectors.js');
const { createBodyMasker } = await shipped<typeof import('../../src/proxy/mask/index.js')>('proxy/mask/index.js');
const { createSseMasker } = await shipped<typeof import('../../src/proxy/mask/sse_masker.js')>('proxy/mask/sse_masker.js');

export const ROW_NAME = 'mask stream (SSE)';
const SLOW_ROW_NAME = 'mask stream (SSE, parsing every event)';
const PARSE_ROW_NAME = 'SSE parse+stringify per event (no masking)';
const COPY_ROW_NAME = 'SSE pass-through copy';

const STREAM_BYTES = 8 * 1024 * 1024;
const CHUNK_BYTES = 16 * 1024;
const SECRET_EVERY_BYTES = 4 * 1024;
const WARMUP_PASSES = 2;
const PASSES = 7;

const POLICY: MaskPolicy = { types: DETECTOR_TYPES, fields: ['password', 'api_key', 'secret', 'token'] };

const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** One secret per type, as a model might write it in prose. */
const PLANTED: Array<[keyof MaskCounts, string, string]> = [
  ['email', 'jane.doe@example.com', 'write to jane.doe@example.com today'],
  ['credit_card', '4111 1111 1111 1111', 'the card 4111 1111 1111 1111 was declined'],
  ['us_ssn', '536-90-4399', 'SSN 536-90-4399 on file'],
  ['aws_access_key', 'AKIA4HJQ2W3XK5L6MNOP', 'use key AKIA4HJQ2W3XK5L6MNOP for S3'],
  [
    'private_key',
    'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu',
    'the key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n-----END RSA PRIVATE KEY-----\nthat is all',
  ],
  ['jwt', `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: '1234567890', name: 'John' })}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`, ''],
  ['bearer_token', 'c2VjcmV0LXRva2VuLXZhbHVlLTEyMzQ1', 'send Authorization: Bearer c2VjcmV0LXRva2VuLXZhbHVlLTEyMzQ1 with it'],
  ['api_key', 'ghp_R3aLlyN0tAr3alT0k3nButL00ksLik3On3xY', 'the token ghp_R3aLlyN0tAr3alT0k3nButL00ksLik3On3xY works'],
  ['iban', 'DE89 3704 0044 0532 0130 00', 'pay to DE89 3704 0044 0532 0130 00 by Friday'],
  ['phone', '+1 212 555 0199', 'call +1 212 555 0199 after six'],
];
PLANTED[5]![2] = `the token is ${PLANTED[5]![1]} and it expires`;

const WORDS =
  'the model answers questions about deployment and configuration of services in a cluster while keeping answers short clear and accurate so that readers can follow every step without guessing what happens next'.split(
    ' ',
  );

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Stream {
  bytes: Buffer;
  events: number;
  planted: Partial<Record<keyof MaskCounts, number>>;
}

export function buildStream(): Stream {
  const rand = prng(65);
  const head = { id: 'chatcmpl-9xYzAbCdEfGhIjKlMnOpQrStUvWx', object: 'chat.completion.chunk', created: 1718000000, model: 'gpt-4o-mini-2024-07-18', system_fingerprint: 'fp_44709d6fcb' };
  const event = (choice: Record<string, unknown>) => `data: ${JSON.stringify({ ...head, choices: [{ index: 0, ...choice }] })}\n\n`;
  const parts: string[] = [event({ delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null })];
  const planted: Stream['planted'] = {};
  let size = parts[0]!.length;
  let sinceSecret = 0;
  let secretIndex = 0;
  let text = '';
  while (size < STREAM_BYTES) {
    if (text.length < 12) {
      if (sinceSecret >= SECRET_EVERY_BYTES) {
        const [type, , sentence] = PLANTED[secretIndex++ % PLANTED.length]!;
        planted[type] = (planted[type] ?? 0) + 1;
        text += ` ${sentence}.`;
        sinceSecret = 0;
      } else {
        text += ` ${WORDS[Math.floor(rand() * WORDS.length)]}`;
        if (rand() < 0.08) text += rand() < 0.5 ? '.' : ',\n';
      }
      continue;
    }
    const n = 3 + Math.floor(rand() * 10);
    const e = event({ delta: { content: text.slice(0, n) }, logprobs: null, finish_reason: null });
    text = text.slice(n);
    parts.push(e);
    size += e.length;
    sinceSecret += e.length;
  }
  parts.push(event({ delta: { content: text }, logprobs: null, finish_reason: null }), event({ delta: {}, logprobs: null, finish_reason: 'stop' }), 'data: [DONE]\n\n');
  return { bytes: Buffer.from(parts.join(''), 'utf8'), events: parts.length, planted };
}

export function chunksOf(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK_BYTES) out.push(bytes.subarray(i, i + CHUNK_BYTES));
  return out;
}

interface Pass {
  seconds: number;
  output?: Buffer;
  counts?: MaskCounts;
}

function timed(run: () => Omit<Pass, 'seconds'>): Pass {
  const started = performance.now();
  const result = run();
  return { ...result, seconds: (performance.now() - started) / 1000 };
}

function measureRow(bytes: number, run: () => Omit<Pass, 'seconds'>): { mbps: number; passes: number[]; last: Pass } {
  for (let i = 0; i < WARMUP_PASSES; i++) run();
  const passes: Pass[] = [];
  for (let i = 0; i < PASSES; i++) passes.push(timed(run));
  const rates = passes.map((p) => bytes / p.seconds / 1e6);
  const sorted = [...rates].sort((a, b) => a - b);
  return { mbps: sorted[PASSES >> 1]!, passes: rates.map((r) => Math.round(r * 10) / 10), last: passes.at(-1)! };
}

export async function measure(ctx: BenchContext): Promise<MeasuredRow[]> {
  const stream = buildStream();
  const chunks = chunksOf(stream.bytes);
  const mib = (stream.bytes.length / 1024 / 1024).toFixed(1);
  ctx.log(`mask stream: ${mib} MiB, ${stream.events} events, ${chunks.length} chunks of 16 KiB, ${PASSES} passes per row`);

  const mask = (fastPath: boolean) => () => {
    const masker = fastPath ? createBodyMasker(POLICY, 'text/event-stream')! : createSseMasker(POLICY, { fastPath: false });
    const out: Uint8Array[] = [];
    for (const c of chunks) out.push(masker.write(c));
    out.push(masker.end());
    return { output: Buffer.concat(out), counts: masker.counts };
  };
  const fast = measureRow(stream.bytes.length, mask(true));
  const slow = measureRow(stream.bytes.length, mask(false));

  const parse = measureRow(stream.bytes.length, () => {
    const decoder = new TextDecoder();
    let rest = '';
    const out: Uint8Array[] = [];
    for (const c of chunks) {
      const text = rest + decoder.decode(c, { stream: true });
      const events = text.split('\n\n');
      rest = events.pop()!;
      let s = '';
      for (const e of events) s += e.startsWith('data: {') ? `data: ${JSON.stringify(JSON.parse(e.slice(6)))}\n\n` : `${e}\n\n`;
      out.push(Buffer.from(s, 'utf8'));
    }
    out.push(Buffer.from(rest, 'utf8'));
    return {};
  });
  const copy = measureRow(stream.bytes.length, () => {
    const out: Uint8Array[] = [];
    for (const c of chunks) out.push(new Uint8Array(c));
    return {};
  });

  const problems: string[] = [];
  for (const [name, row] of [[ROW_NAME, fast], [SLOW_ROW_NAME, slow]] as const) {
    const text = row.last.output!.toString('utf8');
    for (const [type, secret] of PLANTED) if (text.includes(secret)) problems.push(`${name}: a planted ${type} survived`);
    for (const [type, n] of Object.entries(stream.planted)) {
      const got = row.last.counts?.[type as keyof MaskCounts] ?? 0;
      if (got < n) problems.push(`${name}: ${type} masked ${got} times, planted ${n}`);
    }
    if (!text.endsWith('data: [DONE]\n\n')) problems.push(`${name}: the stream does not end with [DONE]`);
  }
  const stats = createSseMasker(POLICY);
  for (const c of chunks) stats.write(c);
  stats.end();

  const common = { stream_bytes: stream.bytes.length, events: stream.events, chunk_bytes: CHUNK_BYTES, planted: stream.planted };
  return [
    {
      name: ROW_NAME,
      value: fast.mbps,
      unit: 'MB/s',
      note: `OpenAI-style SSE, ${mib} MiB, deltas of 3-12 chars, a secret of one of the ten types every ~4 KiB, 16 KiB writes through createBodyMasker (all types + mask_fields); median of ${PASSES}`,
      details: { ...common, passes_mb_s: fast.passes, counts: fast.last.counts, fast_path_events: stats.stats.fast, parsed_events: stats.stats.parsed },
      ...(problems.length > 0 ? { problems } : {}),
      targets: [{ target: 100 }, { baseline: PARSE_ROW_NAME }, { baseline: SLOW_ROW_NAME }],
    },
    {
      name: SLOW_ROW_NAME,
      value: slow.mbps,
      unit: 'MB/s',
      note: 'for context: the same stream and masker with the fast path off (every chunk JSON.parse\'d and serialized again)',
      details: { ...common, passes_mb_s: slow.passes },
    },
    {
      name: PARSE_ROW_NAME,
      value: parse.mbps,
      unit: 'MB/s',
      note: 'for context: the same bytes decoded, split into events, each JSON.parse\'d and JSON.stringify\'d, encoded; no masking',
      details: { ...common, passes_mb_s: parse.passes },
    },
    {
      name: COPY_ROW_NAME,
      value: copy.mbps,
      unit: 'MB/s',
      note: 'for context: each 16 KiB chunk copied (what the proxy does with an unmasked body)',
      details: { ...common, passes_mb_s: copy.passes },
    },
  ];
}
