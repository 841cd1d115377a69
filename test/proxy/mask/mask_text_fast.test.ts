/**
 * maskText's fast path (regexes tried only at the Prefilter's candidate starts) against the
 * full scan it replaced (maskTextFullScan): the same result, text and counts, for every input.
 * The inputs are the corpus texts, pieces cut out of them at random places (a cut is where a
 * candidate list is most likely to miss a start), random prose, digits and punctuation, the
 * words and prefixes the detectors key on, and concatenations of all of these.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CANDIDATE_SCANS, DETECTORS, DETECTOR_TYPES, Prefilter, TRAITS_MAX_CHARS, traitsOf, type DetectorType } from '../../../src/proxy/mask/detectors.js';
import { maskText, maskTextFullScan } from '../../../src/proxy/mask/mask_text.js';
import { loadCorpus } from './corpus_cases.js';

const cases = loadCorpus();
const texts = cases.map((c) => c.text);
const secrets = cases.flatMap((c) => (c.secret === null ? [] : [c.secret]));

/** Every spelling of the key words ASSIGNMENT knows, assigned in each way it accepts. */
const KEY_WORDS = ['api_key', 'api-key', 'ApiKey', 'api_token', 'apitoken', 'secret', 'TOKEN', 'password', 'passwd', 'Pwd', 'credential', 'credentials', 'authorization', 'Auth', 'access_key', 'accesskey'];
const ASSIGNMENTS = KEY_WORDS.flatMap((kw) =>
  ['=', ': ', ' := ', '=>', '"="', "', ", '12\t:\t'].map((sep) => `${kw}${sep}q8Zr2LmX9vT4kP1w`),
);
/** What the detectors and their prefilters key on, and near misses of it. */
const TRIGGERS = [
  '@', 'a@b.co', 'first.last+tag@mail.example.co.uk', '@example.com', `${'x'.repeat(64)}@example.com`,
  'eyJ', 'eyJhbGciOiJIUzI1NiJ9', 'eyJzdWIiOiJ4In0', '.',
  'AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T', 'AKIAIOSFODNN7EXAMPLE', 'AKIA2EQARF3B244CKZQW', 'A3TXQ2EARF3B244CKZQW', 'ASIAY34FZKBOKMUTVV7A', 'ABIAY34FZKBOKMUTVV7A', 'ACCAY34FZKBOKMUTVV7A',
  '-----BEGIN ', '-----BEGINPRIVATE KEY-----', '-----BEGIN OPENSSH PRIVATE KEY-----', 'PRIVATE KEY-----', '-----BEGIN RSA PRIVATE KEY-----\n', '-----END RSA PRIVATE KEY-----', '-----END', '-----',
  'MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oo5rzOhu5WSaoAoGCCqGSM49\n',
  'Authorization', 'authorization: ', 'AUTHORIZATION=', 'Bearer ', 'bearer\t', 'Basic ', 'Token ', 'Api-Token ',
  'api_key', 'API-KEY', 'apikey', 'apiToken', 'api-token', 'secret', 'Secret', 'token', 'TOKEN', 'password', 'PassWord', 'passwd', 'pwd', 'credential', 'credentials', 'auth', 'Authorization', 'access_key', 'accessKey', 'access-key', 'publicToken',
  '=', ':', ':=', '=>', '"', "'", ',', ' ', '\t', '\n', '\r\n', '12', '3',
  'ghp_', 'gho_', 'github_pat_', 'glpat-', 'glrt-', 'GR1348941', 'xoxb-', 'xoxp-1-', 'xapp-1-', 'xoxe.xoxp-1-', 'xoxe-1-',
  'sk_live_', 'rk_test_', 'sk-ant-api03-', 'sk-proj-', 'sk-', 'T3BlbkFJ', 'hooks.slack.com/services/',
  'GB82', 'DE89', 'NO93', ' WEST', 'XX00',
  '+', '+1', '+44 ', '(', ')', '(415)', '555-0100', '0312', '0', '1', '13', '-', '/', '0 1 234', '0-12 345', '1-(415)', '+1 2',
  '4111111111111111', '4111 1111 1111 1111', '3782-822463-10005', '536-22-8410', '536228410', '1700000000008',
  ...ASSIGNMENTS, 'Authorization: Bearer q8Zr2LmX9vT4kP1w', 'Bearer q8Zr2LmX9vT4kP1w', 'hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX',
];

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const chars = (set: string, maxLength: number) => fc.string({ unit: fc.constantFrom(...set), maxLength });

/** A piece cut out of a corpus text: any start, any length. */
const corpusPiece = fc
  .tuple(fc.constantFrom(...texts), fc.nat(), fc.nat({ max: 400 }))
  .map(([text, at, length]) => {
    const start = at % (text.length + 1);
    return text.slice(start, start + length);
  });

/** A corpus text with one char put in at a random place. */
const corpusEdit = fc
  .tuple(fc.constantFrom(...texts), fc.nat(), fc.constantFrom(...' -.:=@+(0123456789aAZ_\n"\''))
  .map(([text, at, ch]) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + ch + text.slice(i);
  });

const fragment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...texts) },
  { weight: 2, arbitrary: fc.constantFrom(...secrets) },
  { weight: 4, arbitrary: corpusPiece },
  { weight: 2, arbitrary: corpusEdit },
  { weight: 6, arbitrary: fc.constantFrom(...TRIGGERS) },
  { weight: 3, arbitrary: chars('0123456789', 20) },
  { weight: 3, arbitrary: chars('0123456789 -.()+/', 40) },
  { weight: 3, arbitrary: chars(`${ALNUM}_-+/=.`, 80) },
  { weight: 2, arbitrary: fc.lorem({ maxCount: 12 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
);

const text = fc.array(fragment, { maxLength: 14 }).map((parts) => parts.join(''));

function assertSame(input: string, types: readonly DetectorType[]): void {
  assert.deepEqual(maskText(input, types), maskTextFullScan(input, types), JSON.stringify(input));
}

/**
 * The rule the fast path rests on, checked for each regex on its own: its candidate starts are
 * sorted and hold every position where it matches (not only those a full scan reaches).
 */
function assertCandidatesCover(input: string): void {
  const pre = new Prefilter(input);
  for (const { regex, starts } of CANDIDATE_SCANS) {
    const candidates = starts(input, pre);
    assert.ok(candidates.every((at, i) => i === 0 || at >= candidates[i - 1]!), `${regex.source}: starts not sorted`);
    const listed = new Set(candidates);
    const sticky = new RegExp(regex.source, `${regex.flags}y`);
    for (let at = 0; at < input.length; at++) {
      sticky.lastIndex = at;
      if (sticky.test(input)) assert.ok(listed.has(at), `${regex.source} matches at ${at} of ${JSON.stringify(input)}`);
    }
  }
}

/**
 * The rule the traits gate rests on: a detector that matches a text (full scan) never calls
 * that text impossible. Checked on the bare secrets and triggers too, which sit right at the
 * gates' length and char thresholds.
 */
function assertGatesHold(input: string): void {
  const traits = traitsOf(input);
  for (const detector of DETECTORS) {
    if (detector.find(input).length > 0) assert.ok(detector.possible(traits), `${detector.type} matches ${JSON.stringify(input)} but its gate says impossible`);
  }
}

/** The shortest secrets of each gated kind: a gate one char or digit too strict misses one of these. */
const AT_THE_GATES: Array<[DetectorType, string]> = [
  ['credit_card', '4222222222222'],
  ['us_ssn', '536228410'],
  ['phone', '415 555 0134'],
  ['iban', 'NO9386011117947'],
  ['aws_access_key', 'AKIA2EQARF3B244CKZQW'],
  ['jwt', 'eyJhbGciOiJub25lIn0.e30.'],
  ['bearer_token', 'Bearer q8Zr2LmX'],
  ['api_key', 'pwd=q8Zr2LmX'],
  ['email', 'a@b.co'],
];

describe('maskText fast path', () => {
  it('masks the shortest secret of each kind (the gates are not too strict)', () => {
    for (const [type, secret] of AT_THE_GATES) {
      assert.equal(maskText(secret, [type]).counts[type], 1, secret);
      assertSame(secret, DETECTOR_TYPES);
    }
  });

  it('never rules a detector out of a text it matches (traits gate)', () => {
    let gated = 0;
    for (const t of [...texts, ...secrets, ...TRIGGERS]) {
      assertGatesHold(t);
      if (t.length <= TRAITS_MAX_CHARS) gated++;
    }
    assert.ok(gated > 100, 'the gates were exercised on short texts');
    fc.assert(fc.property(text, assertGatesHold), { numRuns: 3000 });
    // Each secret with each char a gate keys on taken out, one at a time: right at the edge.
    for (const secret of secrets) for (const ch of '@.-_/:=, \tAJ0123456789') assertGatesHold(secret.split(ch).join(''));
  });

  it('still skips what cannot match: a short clean string runs no detector', () => {
    for (const clean of ['finish', 'assistant', 'chat.completion', 'llama-3-8b', 'fp_demo', 'stop']) {
      const traits = traitsOf(clean);
      const possible = DETECTORS.filter((d) => d.possible(traits)).map((d) => d.type);
      assert.deepEqual(possible, [], clean);
    }
  });


  it('lists every position where a regex matches among its candidates', () => {
    for (const t of texts) assertCandidatesCover(t);
    for (const t of [...TRIGGERS, ...secrets]) for (const around of ['', ' ', 'x', '1', '-', '.']) assertCandidatesCover(around + t + around);
    fc.assert(fc.property(text, assertCandidatesCover), { numRuns: 1000 });
  });

  it('matches the full scan on every corpus text', () => {
    for (const t of texts) assertSame(t, DETECTOR_TYPES);
  });

  it('matches the full scan on all corpus texts joined (one long text)', () => {
    for (const sep of ['\n', ' ', '']) assertSame(texts.join(sep), DETECTOR_TYPES);
  });

  it('matches the full scan on random texts, all types', () => {
    fc.assert(
      fc.property(text, (t) => assertSame(t, DETECTOR_TYPES)),
      { numRuns: 10000 },
    );
  });

  it('matches the full scan on random texts, a random subset of types', () => {
    fc.assert(
      fc.property(text, fc.subarray([...DETECTOR_TYPES]), (t, types) => assertSame(t, types)),
      { numRuns: 2000 },
    );
  });
});
