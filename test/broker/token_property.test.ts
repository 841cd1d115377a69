/**
 * Property tests for `POST /oauth2/token`: whatever arrives (arbitrary forms, repeated and
 * unicode parameters, huge values, JSON of any shape, wrong content types, empty bodies) the
 * broker answers a 4xx with the `{error, error_description}` body of openapi.yaml and
 * `Cache-Control: no-store`; never a 5xx (not even 503: the store is memory and the only IdP
 * trusted here is up). And any garbage subject token with the right grant type is a plain
 * 400 `invalid_request`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { request } from 'undici';
import { TOKEN_EXCHANGE, startTestBroker, trustEntry, TT, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { assertMatchesOpenApi } from '../support/openapi.js';

const REAL_NAMES = [
  'grant_type',
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
  'audience',
  'resource',
  'scope',
  'expires_in',
] as const;

const WELL_KNOWN_VALUES = [
  TOKEN_EXCHANGE,
  'client_credentials',
  TT.jwt,
  TT.idToken,
  TT.accessToken,
  'urn:ietf:params:oauth:token-type:saml2',
  'urn:ietf:params:oauth:token-type:refresh_token',
  'inference-gateway',
  'inference:invoke model:*',
  'mintgate:admin',
  '0',
  '-1',
  '1.5',
  '99999999999999999999',
  'NaN',
  'a.b.c',
  'eyJhbGciOiJub25lIn0.e30.',
  ' ',
  '\u0000',
  '%00',
  '__proto__',
];

interface RawRequest {
  contentType: string | undefined;
  body: string;
}

const b64u = (text: string | Uint8Array): string => Buffer.from(text).toString('base64url');

/** One request to the token endpoint, answered in full. */
async function post(broker: TestBroker, req: RawRequest) {
  const res = await request(`${broker.url}/oauth2/token`, {
    method: 'POST',
    headers: req.contentType === undefined ? {} : { 'content-type': req.contentType },
    body: req.body,
  });
  const text = await res.body.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.statusCode, headers: res.headers, body, text };
}

/** The error contract: 4xx, `{error, error_description}` (nothing else), no-store, as openapi.yaml says. */
function assertErrorAnswer(res: Awaited<ReturnType<typeof post>>, label: string): void {
  assert.ok(res.status >= 400 && res.status < 500, `${label}: status ${res.status} ${res.text.slice(0, 300)}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, label);
  const body = res.body as Record<string, unknown>;
  assert.ok(typeof body === 'object' && body !== null, `${label}: body ${res.text.slice(0, 200)}`);
  assert.deepEqual(Object.keys(body).sort(), ['error', 'error_description'], label);
  assert.equal(typeof body.error, 'string');
  assert.equal(typeof body.error_description, 'string');
  assert.equal(res.headers['cache-control'], 'no-store', label);
  assertMatchesOpenApi('POST', '/oauth2/token', res.status, body);
}

describe('POST /oauth2/token: properties', () => {
  let idp: LocalIssuer;
  let broker: TestBroker;
  const pool: string[] = [];

  before(async () => {
    idp = await startLocalIssuer();
    broker = await startTestBroker({ config: { trust: [trustEntry(idp.issuer)] } });
    // Genuine assertions, only ever sent mutated (each would otherwise be accepted once).
    for (let i = 0; i < 8; i++) pool.push(await idp.github({ run_id: `pool-${i}` }));
    // Warm the key cache, so garbage naming the trusted issuer meets real keys.
    const warm = await broker.exchange(await idp.github());
    assert.equal(warm.status, 200, warm.text);
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
  });

  // ---- arbitrary requests ------------------------------------------------------------------

  const name = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...REAL_NAMES) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 16 }) },
    { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'a[b]', 'a[]', 'grant_type[]', '') },
  );
  const hugeValue = fc.integer({ min: 1_000, max: 100_000 }).chain((n) => fc.constantFrom('A', 'é', '%', '.', '😀').map((c) => c.repeat(n)));
  const value = fc.oneof(
    { weight: 12, arbitrary: fc.string({ unit: 'grapheme', maxLength: 64 }) },
    { weight: 9, arbitrary: fc.constantFrom(...WELL_KNOWN_VALUES) },
    { weight: 6, arbitrary: fc.string({ unit: 'binary', maxLength: 64 }) },
    { weight: 1, arbitrary: hugeValue }, // occasionally, up to 100 KB (over the 64 KiB body cap)
  );
  const pairs = fc.array(fc.tuple(name, value), { maxLength: 12 });
  const fewExtras = fc.array(fc.tuple(fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...REAL_NAMES) }, { weight: 4, arbitrary: fc.string({ maxLength: 12 }) }), value), {
    maxLength: 3,
  });
  /** Mostly the real parameters, each once (so deeper checks are reached), plus arbitrary extras. */
  const plausible = fc
    .record(
      {
        grant_type: fc.oneof({ weight: 4, arbitrary: fc.constant(TOKEN_EXCHANGE) }, { weight: 1, arbitrary: value }),
        subject_token: value,
        subject_token_type: fc.oneof(fc.constantFrom(TT.jwt, TT.idToken, TT.accessToken), value),
        audience: value,
        scope: value,
        expires_in: value,
      },
      { requiredKeys: ['grant_type', 'subject_token', 'subject_token_type'] },
    )
    .chain((base) => fewExtras.map((extra) => [...Object.entries(base), ...extra] as Array<[string, string]>));

  const formBody = fc.oneof(pairs, plausible).map((entries) => {
    const form = new URLSearchParams();
    for (const [k, v] of entries) form.append(k, v);
    return form.toString();
  });
  const formContentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/x-www-form-urlencoded') },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'application/x-www-form-urlencoded; charset=utf-8',
        'APPLICATION/X-WWW-FORM-URLENCODED',
        'application/x-www-form-urlencoded; charset=iso-8859-1',
        'application/x-www-form-urlencoded; charset=latin1',
        'application/x-www-form-urlencoded; charset=utf-16',
      ),
    },
  );
  const jsonContentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    { weight: 1, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'application/json; charset=utf-16', 'Application/JSON') },
  );
  const wrongContentType = fc.oneof(
    fc.constantFrom(
      undefined,
      '',
      'text/plain',
      'application/xml',
      'multipart/form-data; boundary=x',
      'application/json-patch+json',
      'application/jsonx',
      'application/x-www-form-urlencodedx',
      'application/octet-stream',
    ),
    fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
  );
  const jsonBody = fc.oneof(
    fc.json({ maxDepth: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...REAL_NAMES), fc.string()), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }).map((o) => JSON.stringify(o)),
    fc.dictionary(fc.constantFrom(...REAL_NAMES), fc.oneof(value, fc.array(value, { maxLength: 3 })), { maxKeys: 8 }).map((o) => JSON.stringify(o)),
    plausible.map((entries) => JSON.stringify(Object.fromEntries(entries))),
  );
  const anyRequest: fc.Arbitrary<RawRequest> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ contentType: formContentType, body: formBody }) },
    { weight: 3, arbitrary: fc.record({ contentType: jsonContentType, body: jsonBody }) },
    { weight: 1, arbitrary: fc.record({ contentType: fc.oneof(formContentType, jsonContentType), body: fc.string({ unit: 'binary', maxLength: 200 }) }) },
    { weight: 1, arbitrary: fc.record({ contentType: fc.oneof(formContentType, jsonContentType, wrongContentType), body: fc.constant('') }) },
    { weight: 2, arbitrary: fc.record({ contentType: wrongContentType, body: fc.oneof(formBody, jsonBody) }) },
  );

  it('answers any request with a 4xx {error, error_description}, no-store, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(anyRequest, async (req) => {
        const res = await post(broker, req);
        assertErrorAnswer(res, `${req.contentType} ${req.body.slice(0, 120)}`);
      }),
      { numRuns: 300 },
    );
  });

  // ---- garbage subject tokens --------------------------------------------------------------

  const json = fc.jsonValue({ maxDepth: 3 });
  const header = fc.record(
    {
      alg: fc.oneof(fc.constantFrom('none', 'RS256', 'RS512', 'ES256', 'HS256', 'EdDSA', 'PS256'), json),
      kid: fc.oneof(fc.constant('$KID'), fc.string({ maxLength: 40 }), json),
      typ: fc.oneof(fc.constantFrom('JWT', 'at+jwt', 'dpop+jwt'), json),
      cty: json,
      crit: json,
    },
    { requiredKeys: [] },
  );
  const numericDate = fc.oneof(fc.integer({ min: -1, max: 4_102_444_800 }), fc.double(), fc.string({ maxLength: 12 }), json);
  const claims = fc.record(
    {
      iss: fc.oneof(fc.constantFrom('$ISS', '$BROKER', 'https://token.actions.githubusercontent.com'), json),
      sub: fc.oneof(fc.string({ maxLength: 40 }), json),
      aud: fc.oneof(fc.constantFrom('mintgate', 'inference-gateway'), fc.array(fc.constantFrom('mintgate', 'x')), json),
      exp: numericDate,
      nbf: numericDate,
      iat: numericDate,
      jti: fc.oneof(fc.uuid(), json),
      repository: fc.constantFrom('acme/models', 'evil/models'),
    },
    { requiredKeys: [] },
  );
  const fill = (text: string): string =>
    text.replaceAll('"$KID"', JSON.stringify(idp.kid)).replaceAll('"$ISS"', JSON.stringify(idp.issuer)).replaceAll('"$BROKER"', JSON.stringify(broker.url));
  const jwtShaped = fc
    .tuple(header, claims, fc.uint8Array({ maxLength: 300 }))
    .map(([h, c, sig]) => `${b64u(fill(JSON.stringify(h)))}.${b64u(fill(JSON.stringify(c)))}.${b64u(sig)}`);
  const segmentSoup = fc
    .array(fc.oneof(fc.base64String({ maxLength: 80 }), fc.string({ maxLength: 20 }), fc.constant('')), { minLength: 1, maxLength: 6 })
    .map((segments) => segments.join('.'));
  /** A genuine assertion with one edit: never the original (which would be accepted). */
  const mutated = fc
    .tuple(fc.nat(), fc.nat(), fc.constantFrom('replace', 'delete', 'insert', 'truncate', 'swap-dot'), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 3 }))
    .map(([which, at, op, text]) => {
      const original = pool[which % pool.length]!;
      const i = at % original.length;
      switch (op) {
        case 'replace':
          return original.slice(0, i) + text + original.slice(i + text.length);
        case 'delete':
          return original.slice(0, i) + original.slice(i + 1);
        case 'insert':
          return original.slice(0, i) + text + original.slice(i);
        case 'truncate':
          return original.slice(0, i);
        default:
          return original.replace('.', text);
      }
    })
    .filter((token) => !pool.includes(token));
  const garbage = fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 1000 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 500 }) },
    { weight: 4, arbitrary: jwtShaped },
    { weight: 2, arbitrary: segmentSoup },
    { weight: 3, arbitrary: mutated },
    { weight: 1, arbitrary: fc.integer({ min: 8000, max: 20_000 }).map((n) => 'e'.repeat(n)) },
  );

  it('refuses any garbage subject token with 400 invalid_request', async () => {
    await fc.assert(
      fc.asyncProperty(garbage, fc.constantFrom(TT.jwt, TT.idToken, TT.accessToken), async (token, type) => {
        const res = await broker.exchange(token, { subject_token_type: type });
        assert.equal(res.status, 400, `${type} ${token.slice(0, 200)} -> ${res.status} ${res.text}`);
        assert.equal(res.body.error, 'invalid_request', res.text);
        assertErrorAnswer({ ...res, text: res.text }, token.slice(0, 120));
      }),
      { numRuns: 300 },
    );
    assert.equal(broker.audit.events.filter((e) => e.type === 'token.issued').length, 1, 'only the warm-up minted a token');
  });

  // ---- compressed bodies ---------------------------------------------------------------------

  it(
    'answers a body whose Content-Encoding does not decode with a 4xx',
    async () => {
      for (const encoding of ['gzip', 'deflate', 'br']) {
        for (const contentType of ['application/x-www-form-urlencoded', 'application/json']) {
          const res = await request(`${broker.url}/oauth2/token`, {
            method: 'POST',
            headers: { 'content-type': contentType, 'content-encoding': encoding },
            body: 'not compressed at all',
          });
          const text = await res.body.text();
          assertErrorAnswer({ status: res.statusCode, headers: res.headers, body: JSON.parse(text), text }, `${encoding} ${contentType}`);
        }
      }
    },
  );
});
