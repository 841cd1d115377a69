/**
 * SPEC.md section 4, the attack catalogue, against `POST /oauth2/token`: one table of
 * (name, subject token, expected status and error). Every row is a real HTTP exchange with a
 * real broker and real local issuers; each refusal is checked for its exact status and `error`,
 * against openapi.yaml, for `Cache-Control: no-store`, and for having minted nothing (no new
 * `token.issued` audit event, no `access_token` in the body).
 *
 * Time is shared: the broker and every issuer read one clock that a row may move forward
 * (`fx.advance`), so cooldowns and cache ages are exercised without sleeping.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, sign as cryptoSign, X509Certificate, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CompactEncrypt, type JWK } from 'jose';
import { startTestBroker, trustEntry, TT, type HttpAnswer, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type ClaimSet, type LocalIssuer, type RawSigner } from '../support/local_issuer.js';
import { assertMatchesOpenApi } from '../support/openapi.js';

/** The order of the P-256 group (SEC 2, 2.4.2): valid ECDSA r and s lie in [1, n-1]. */
const P256_N = BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551');

interface Attacker {
  url: string;
  /** Every request path the attacker's server received; the broker must never add one. */
  hits: string[];
  privateKey: KeyObject;
  publicJwk: JWK;
  /** A self-signed X.509 certificate (DER) for the attacker's key, as x5c carries it. */
  certDer: Buffer;
  close(): Promise<void>;
}

interface Fixtures {
  broker: TestBroker;
  /** RS256, trusted as `ci` (RS256, ES256 allowed); its keys are cached by the warm-up. */
  idp: LocalIssuer;
  /** ES256, trusted as `es` (ES256 only). */
  es: LocalIssuer;
  /** Not in the trust list at all. */
  untrusted: LocalIssuer;
  /** Trusted, but its JWKS is 1 MiB. */
  giant: LocalIssuer;
  /** Trusted, but its JWKS holds 1000 keys (its real key among them). */
  many: LocalIssuer;
  /** Trusted, but its JWKS holds only keys that must never be used (private, oct, enc, malformed, weak). */
  badKeys: LocalIssuer;
  /** Trusted, but discovery and JWKS answer with a redirect to the attacker. */
  redirected: LocalIssuer;
  /** Trusted, never reachable. */
  down: LocalIssuer;
  /** Trusted; goes down after its keys were fetched (stale keys). */
  flaky: LocalIssuer;
  attacker: Attacker;
  /** Keys published (only) by `badKeys`, with the private halves the attacker holds. */
  weakKey: KeyObject;
  octSecret: Buffer;
  /** The shared clock, epoch milliseconds. */
  now(): number;
  nowSec(): number;
  advance(ms: number): void;
}

interface AttackRow {
  name: string;
  /** Builds the subject token (it may exchange first, e.g. for replay). */
  make: (idp: LocalIssuer, fx: Fixtures) => Promise<string>;
  status: number;
  error: string;
  /** Extra form parameters (e.g. another subject_token_type). */
  params?: Record<string, string>;
  /** Further assertions; `jwksBefore` is the main issuer's JWKS fetch count before the request. */
  check?: (ctx: { fx: Fixtures; res: HttpAnswer; jwksBefore: number }) => Promise<void> | void;
  /** A known broker bug outside the files this suite may change (see the reason). */
  todo?: string;
}

// ---------------------------------------------------------------------------------------------
// Token building helpers

const b64u = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64url');
const segment = (token: string, i: number): ClaimSet => JSON.parse(Buffer.from(token.split('.')[i]!, 'base64url').toString('utf8')) as ClaimSet;

/** A GitHub-shaped token with claims of any type (the helper's types forbid wrongly typed claims). */
const github = (idp: LocalIssuer, claims: ClaimSet): Promise<string> => idp.github(claims as Parameters<LocalIssuer['github']>[0]);

/** Header and claims of a GitHub-shaped token from `idp`, for re-signing by hand. */
async function parts(idp: LocalIssuer, claims: ClaimSet = {}): Promise<{ header: ClaimSet; claims: ClaimSet }> {
  const token = await idp.github(claims);
  return { header: segment(token, 0), claims: segment(token, 1) };
}

/** A GitHub-shaped token with header members changed, signed by `signer` (default: the issuer's real key). */
async function forged(idp: LocalIssuer, header: ClaimSet, signer: RawSigner = 'key', claims: ClaimSet = {}): Promise<string> {
  const p = await parts(idp, claims);
  return idp.rawSign({ ...p.header, ...header }, p.claims, signer);
}

/** Claims serialised with `edit` applied to the JSON text (duplicate keys, odd numbers), validly signed. */
async function editedPayload(idp: LocalIssuer, edit: (json: string, claims: ClaimSet) => string, claims: ClaimSet = {}): Promise<string> {
  const p = await parts(idp, claims);
  return idp.rawSign(p.header, edit(JSON.stringify(p.claims), p.claims), 'key');
}

/** Header serialised by hand (duplicate members, deep nesting), validly signed. */
async function editedHeader(idp: LocalIssuer, edit: (json: string, header: ClaimSet) => string): Promise<string> {
  const p = await parts(idp);
  return idp.rawSign(edit(JSON.stringify(p.header), p.header), p.claims, 'key');
}

/** Replaces the signature segment of `token` with `bytes`. */
const withSignature = (token: string, bytes: Uint8Array): string => `${token.slice(0, token.lastIndexOf('.'))}.${b64u(bytes)}`;

/** The same signature bytes with different unused trailing bits in the last base64url character. */
function reencodedSignature(token: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = token.at(-1)!;
  const swapped = alphabet[alphabet.indexOf(last) ^ 1]!;
  const variant = `${token.slice(0, -1)}${swapped}`;
  assert.deepEqual(Buffer.from(variant.split('.')[2]!, 'base64url'), Buffer.from(token.split('.')[2]!, 'base64url'), 'same bytes');
  return variant;
}

const scalar = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');

/** An ES256 signature (r, s) turned into the equally valid (r, n - s) (ECDSA malleability). */
function malleated(token: string): string {
  const sig = Buffer.from(token.split('.')[2]!, 'base64url');
  const s = BigInt(`0x${sig.subarray(32).toString('hex')}`);
  return withSignature(token, Buffer.concat([sig.subarray(0, 32), scalar(P256_N - s)]));
}

/** R||S as an ASN.1 DER ECDSA-Sig-Value, the encoding JWS does not use (RFC 7518 3.4). */
function derSignature(token: string): Buffer {
  const sig = Buffer.from(token.split('.')[2]!, 'base64url');
  const int = (b: Buffer): Buffer => {
    let v = b;
    while (v.length > 1 && v[0] === 0 && v[1]! < 0x80) v = v.subarray(1);
    if (v[0]! >= 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return der(0x02, v);
  };
  return der(0x30, Buffer.concat([int(sig.subarray(0, 32)), int(sig.subarray(32))]));
}

function der(tag: number, content: Buffer): Buffer {
  const len = content.length;
  const head = len < 0x80 ? [len] : len < 0x100 ? [0x81, len] : [0x82, len >> 8, len & 0xff];
  return Buffer.concat([Buffer.from([tag, ...head]), content]);
}

/** A minimal self-signed X.509 v3 certificate (RFC 5280 4.1), sha256WithRSAEncryption. */
function selfSignedCert(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  const oid = (hex: string): Buffer => der(0x06, Buffer.from(hex, 'hex'));
  const sha256WithRsa = der(0x30, Buffer.concat([oid('2a864886f70d01010b'), Buffer.from([0x05, 0x00])]));
  const name = der(0x30, der(0x31, der(0x30, Buffer.concat([oid('550403'), der(0x0c, Buffer.from('attacker.example'))]))));
  const utc = (d: Date): Buffer => der(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`));
  const validity = der(0x30, Buffer.concat([utc(new Date(Date.now() - 3600_000)), utc(new Date(Date.now() + 86_400_000))]));
  const tbs = der(
    0x30,
    Buffer.concat([
      der(0xa0, der(0x02, Buffer.from([2]))),
      der(0x02, Buffer.from([0x01, 0x23, 0x45])),
      sha256WithRsa,
      name,
      validity,
      name,
      publicKey.export({ type: 'spki', format: 'der' }),
    ]),
  );
  const signature = cryptoSign('sha256', tbs, privateKey);
  const cert = der(0x30, Buffer.concat([tbs, sha256WithRsa, der(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
  assert.ok(new X509Certificate(cert).verify(publicKey), 'the attacker certificate is self-signed');
  return cert;
}

async function startAttacker(): Promise<Attacker> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicJwk: JWK = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'attacker', alg: 'RS256', use: 'sig' };
  const hits: string[] = [];
  // Answers anything with the attacker's key set, so that any fetch the broker made would "work".
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '/');
    const body = JSON.stringify(req.url?.includes('openid-configuration') ? { issuer: 'x', jwks_uri: 'x' } : { keys: [publicJwk] });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    privateKey,
    publicJwk,
    certDer: selfSignedCert(privateKey, publicKey),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const noAttackerFetch = ({ fx }: { fx: Fixtures }): void => assert.deepEqual(fx.attacker.hits, [], 'the broker fetched from the attacker');

// ---------------------------------------------------------------------------------------------
// The table

const ATTACKS: AttackRow[] = [
  // alg none: exact per-issuer algorithm allow-list
  ...['none', 'None', 'NONE', 'nOnE'].flatMap((alg): AttackRow[] => [
    { name: `alg none: alg "${alg}", empty signature`, make: (idp) => forged(idp, { alg }, 'none'), status: 400, error: 'invalid_request' },
    { name: `alg none: alg "${alg}" with a real RS256 signature`, make: (idp) => forged(idp, { alg }, 'key'), status: 400, error: 'invalid_request' },
  ]),
  { name: 'alg none: no alg member at all', make: (idp) => forged(idp, { alg: undefined }, 'key'), status: 400, error: 'invalid_request' },
  { name: 'alg none: the allowed alg with an empty signature', make: (idp) => forged(idp, {}, 'none'), status: 400, error: 'invalid_request' },

  // RS/HS confusion: the algorithm comes from config/JWK, never from the header
  {
    name: 'RS/HS confusion: HS256 keyed with the issuer public PEM',
    make: (idp) => forged(idp, { alg: 'HS256' }, { hmacSecret: Buffer.from(idp.publicPem()) }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'RS/HS confusion: HS256 keyed with the PEM without its final newline',
    make: (idp) => forged(idp, { alg: 'HS256' }, { hmacSecret: Buffer.from(idp.publicPem().trimEnd()) }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'RS/HS confusion: HS512 keyed with the issuer public JWK JSON',
    make: (idp) => forged(idp, { alg: 'HS512' }, { hmacSecret: Buffer.from(JSON.stringify(idp.jwks().keys[0])) }),
    status: 400,
    error: 'invalid_request',
  },
  { name: 'alg allow-list: RS512, validly signed by the trusted key', make: (idp) => forged(idp, { alg: 'RS512' }), status: 400, error: 'invalid_request' },
  { name: 'alg allow-list: PS256, validly signed by the trusted key', make: (idp) => forged(idp, { alg: 'PS256' }), status: 400, error: 'invalid_request' },
  { name: 'alg allow-list: ES256 (allowed) naming the RSA key', make: (idp) => forged(idp, { alg: 'ES256' }), status: 400, error: 'invalid_request' },

  // kid injection: opaque key into the trusted JWKS map; capped; unknown kid: one rate-limited refresh
  { name: 'kid injection: ../../dev/null', make: (idp) => forged(idp, { kid: '../../dev/null' }), status: 400, error: 'invalid_request' },
  { name: "kid injection: SQL text", make: (idp) => forged(idp, { kid: "x' UNION SELECT 'secret' -- " }), status: 400, error: 'invalid_request' },
  { name: 'kid injection: a 10 KB kid', make: (idp) => forged(idp, { kid: 'k'.repeat(10 * 1024) }), status: 400, error: 'invalid_request' },
  { name: 'kid injection: a 300-character kid (under the token cap)', make: (idp) => forged(idp, { kid: 'k'.repeat(300) }), status: 400, error: 'invalid_request' },
  { name: 'kid injection: a number', make: (idp) => forged(idp, { kid: 12345 }), status: 400, error: 'invalid_request' },
  {
    name: 'kid injection: an unknown kid causes at most one JWKS refetch per cooldown',
    make: (idp, fx) => {
      fx.advance(31_000); // past the 30 s cooldown since the last fetch: one refetch is allowed
      return forged(idp, { kid: 'unknown-kid-0' });
    },
    status: 400,
    error: 'invalid_request',
    check: async ({ fx, jwksBefore }) => {
      const more = await Promise.all([1, 2, 3, 4].map(async (i) => fx.broker.exchange(await forged(fx.idp, { kid: `unknown-kid-${i}` }))));
      for (const r of more) assert.equal(r.status, 400, r.text);
      assert.equal(fx.idp.fetches.jwks - jwksBefore, 1, 'one refetch for five unknown kids within the cooldown');
    },
  },

  // jku / x5u: never fetch keys named by a token
  {
    name: "jku: header URL to the attacker's JWKS (signed by the attacker)",
    make: (idp, fx) => forged(idp, { jku: `${fx.attacker.url}/jwks.json`, kid: 'attacker' }, { privateKey: fx.attacker.privateKey }),
    status: 400,
    error: 'invalid_request',
    check: noAttackerFetch,
  },
  {
    name: "jku: header URL to the attacker's JWKS, kid of the trusted key",
    make: (idp, fx) => forged(idp, { jku: `${fx.attacker.url}/jwks.json` }, 'key'),
    status: 400,
    error: 'invalid_request',
    check: noAttackerFetch,
  },
  {
    name: "x5u: header URL to the attacker's certificate",
    make: (idp, fx) => forged(idp, { x5u: `${fx.attacker.url}/cert.pem`, kid: 'attacker' }, { privateKey: fx.attacker.privateKey }),
    status: 400,
    error: 'invalid_request',
    check: noAttackerFetch,
  },

  // embedded jwk / x5c (CVE-2018-0114): never trust a key carried by the token
  {
    name: 'embedded jwk: self-generated key in the header, signed by it',
    make: (idp, fx) => forged(idp, { jwk: fx.attacker.publicJwk, kid: undefined }, { privateKey: fx.attacker.privateKey }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'embedded jwk: attacker key in the header with the trusted kid',
    make: (idp, fx) => forged(idp, { jwk: { ...fx.attacker.publicJwk, kid: idp.kid } }, { privateKey: fx.attacker.privateKey }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'embedded x5c: self-signed certificate in the header, signed by its key',
    make: (idp, fx) => forged(idp, { x5c: [fx.attacker.certDer.toString('base64')], kid: undefined }, { privateKey: fx.attacker.privateKey }),
    status: 400,
    error: 'invalid_request',
  },

  // crit: refuse
  {
    name: 'crit: an unknown extension',
    make: (idp) => forged(idp, { crit: ['https://attacker.example/skip-checks'], 'https://attacker.example/skip-checks': true }),
    status: 400,
    error: 'invalid_request',
  },
  { name: 'crit: empty array', make: (idp) => forged(idp, { crit: [] }), status: 400, error: 'invalid_request' },
  { name: 'crit: naming alg', make: (idp) => forged(idp, { crit: ['alg'] }), status: 400, error: 'invalid_request' },
  { name: 'crit: naming exp (a claim, not a header member)', make: (idp) => forged(idp, { crit: ['exp'] }), status: 400, error: 'invalid_request' },

  // b64=false (RFC 7797): refuse for JWTs
  {
    name: 'b64=false with crit ["b64"]',
    // A pre-serialised header keeps the payload base64url-encoded (the payload holds "." in iss).
    make: (idp) => editedHeader(idp, (json) => `${json.slice(0, -1)},"b64":false,"crit":["b64"]}`),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'b64=false without crit',
    make: (idp) => editedHeader(idp, (json) => `${json.slice(0, -1)},"b64":false}`),
    status: 400,
    error: 'invalid_request',
  },

  // psychic signature (CVE-2022-21449): exact R||S length, 1 <= r,s < n
  {
    name: 'psychic signature: ES256 with 64 zero bytes (r = s = 0)',
    make: (_idp, fx) => forged(fx.es, {}, { zeroSignature: 64 }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'psychic signature: ES256 with r = s = n - 1',
    make: (_idp, fx) => forged(fx.es, {}, { raw: Buffer.concat([scalar(P256_N - 1n), scalar(P256_N - 1n)]) }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'psychic signature: ES256 with r = s = n',
    make: (_idp, fx) => forged(fx.es, {}, { raw: Buffer.concat([scalar(P256_N), scalar(P256_N)]) }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'psychic signature: ES256 with 8 zero bytes (short R||S)',
    make: (_idp, fx) => forged(fx.es, {}, { zeroSignature: 8 }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'psychic signature: a valid ES256 signature, DER-encoded instead of R||S',
    make: async (_idp, fx) => {
      const token = await fx.es.github();
      return withSignature(token, derSignature(token));
    },
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'psychic signature: a valid ES256 signature with a byte appended',
    make: async (_idp, fx) => {
      const token = await fx.es.github();
      return withSignature(token, Buffer.concat([Buffer.from(token.split('.')[2]!, 'base64url'), Buffer.from([0])]));
    },
    status: 400,
    error: 'invalid_request',
  },

  // oversize: cap sizes before decoding; cap JWKS size and key count; refuse JWE
  { name: 'oversize: a 9 KB token', make: (idp) => idp.github({ padding: 'p'.repeat(9 * 1024) }), status: 400, error: 'invalid_request' },
  { name: 'oversize: a 9 KB header', make: (idp) => forged(idp, { padding: 'p'.repeat(9 * 1024) }), status: 400, error: 'invalid_request' },
  {
    name: 'oversize: claims nested 100 deep',
    make: (idp) => editedPayload(idp, (json) => `${json.slice(0, -1)},"deep":${'['.repeat(100)}${']'.repeat(100)}}`),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'oversize: a header nested 100 deep',
    make: (idp) => editedHeader(idp, (json) => `${json.slice(0, -1)},"x":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}`),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'oversize: a 1 MiB JWKS (nothing cached) is not used',
    make: (_idp, fx) => fx.giant.github(),
    status: 400,
    error: 'invalid_request',
    check: ({ fx }) => assert.ok(fx.giant.fetches.jwks >= 1, 'the JWKS was fetched (and refused)'),
  },
  {
    name: 'oversize: a JWKS of 1000 keys (the real one among them) is not used',
    make: (_idp, fx) => fx.many.github(),
    status: 400,
    error: 'invalid_request',
    check: ({ fx }) => assert.ok(fx.many.fetches.jwks >= 1, 'the JWKS was fetched (and refused)'),
  },
  {
    name: 'oversize: a JWE (5 parts) wrapping a signed JWT',
    make: async (idp) =>
      new CompactEncrypt(Buffer.from(await idp.github()))
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', cty: 'JWT' })
        .encrypt(createPublicKey(idp.publicPem())),
    status: 400,
    error: 'invalid_request',
  },

  // nested JWT: refuse
  {
    name: 'nested JWT: cty JWT with a signed JWT as the payload',
    make: async (idp) => {
      const p = await parts(idp);
      return idp.rawSign({ ...p.header, cty: 'JWT' }, await idp.github(), 'key');
    },
    status: 400,
    error: 'invalid_request',
  },
  { name: 'nested JWT: cty JWT over ordinary claims', make: (idp) => forged(idp, { cty: 'JWT' }), status: 400, error: 'invalid_request' },

  // aud confusion: exact string equality; non-strings refused
  { name: 'aud confusion: array with one foreign value', make: (idp) => idp.github({ aud: ['mintgate', 'https://github.com/acme'] }), status: 400, error: 'invalid_request' },
  { name: 'aud confusion: a number', make: (idp) => github(idp, { aud: 5 }), status: 400, error: 'invalid_request' },
  { name: 'aud confusion: an empty array', make: (idp) => idp.github({ aud: [] }), status: 400, error: 'invalid_request' },
  { name: 'aud confusion: prefix trick "mintgate-evil"', make: (idp) => idp.github({ aud: 'mintgate-evil' }), status: 400, error: 'invalid_request' },
  { name: 'aud confusion: ["mintgate", 5]', make: (idp) => github(idp, { aud: ['mintgate', 5] }), status: 400, error: 'invalid_request' },
  { name: 'aud confusion: other case "Mintgate"', make: (idp) => idp.github({ aud: 'Mintgate' }), status: 400, error: 'invalid_request' },
  { name: 'aud confusion: an object', make: (idp) => github(idp, { aud: { mintgate: true } }), status: 400, error: 'invalid_request' },
  { name: 'aud confusion: missing', make: (idp) => idp.github({ aud: null }), status: 400, error: 'invalid_request' },

  // NumericDate types: numbers only; exp required
  { name: 'NumericDate types: exp "1700000000" (a string)', make: (idp, fx) => github(idp, { exp: String(fx.nowSec() + 300) }), status: 400, error: 'invalid_request' },
  { name: 'NumericDate types: exp missing', make: (idp) => idp.github({ exp: null }), status: 400, error: 'invalid_request' },
  { name: 'NumericDate types: nbf a string', make: (idp, fx) => github(idp, { nbf: String(fx.nowSec()) }), status: 400, error: 'invalid_request' },
  { name: 'NumericDate types: iat a string', make: (idp, fx) => github(idp, { iat: String(fx.nowSec()) }), status: 400, error: 'invalid_request' },
  { name: 'NumericDate types: exp 1e400 (Infinity once parsed)', make: (idp) => editedPayload(idp, (json) => json.replace(/"exp":\d+/, '"exp":1e400')), status: 400, error: 'invalid_request' },
  { name: 'NumericDate types: exp true', make: (idp) => github(idp, { exp: true }), status: 400, error: 'invalid_request' },

  // iat in the future / skew / nbf
  { name: 'iat in the future: now + 1 h', make: (idp, fx) => idp.github({ iat: fx.nowSec() + 3600 }), status: 400, error: 'invalid_request' },
  {
    name: 'skew: exp 90 s in the past (beyond the 30 s leeway)',
    make: (idp, fx) => idp.github({ exp: fx.nowSec() - 90, iat: fx.nowSec() - 390, nbf: fx.nowSec() - 390 }),
    status: 400,
    error: 'invalid_request',
  },
  { name: 'skew: nbf 120 s in the future (beyond the leeway)', make: (idp, fx) => idp.github({ nbf: fx.nowSec() + 120 }), status: 400, error: 'invalid_request' },

  // substitution: aud, typ at+jwt, distinct keys per token kind
  {
    name: 'substitution: a mintgate token (aud inference-gateway) presented as an identity assertion',
    make: async (idp, fx) => {
      const res = await fx.broker.exchange(await idp.github());
      assert.equal(res.status, 200, res.text);
      return res.body.access_token as string;
    },
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'substitution: an ID token presented as a mintgate access token',
    make: (idp) => idp.github(),
    params: { subject_token_type: TT.accessToken },
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'substitution: an ID token typed at+jwt presented as a mintgate access token',
    make: (idp) => idp.github({}, { header: { typ: 'at+jwt' } }),
    params: { subject_token_type: TT.accessToken },
    status: 400,
    error: 'invalid_request',
  },
  { name: 'substitution: typ dpop+jwt is not an identity token', make: (idp) => idp.github({}, { header: { typ: 'dpop+jwt' } }), status: 400, error: 'invalid_request' },

  // duplicate claims: JSON.parse keeps the last silently
  {
    name: 'duplicate claims: {"sub":"a", ..., "sub":"admin"}',
    make: (idp) => editedPayload(idp, (json) => `{"sub":"a",${JSON.stringify({ ...JSON.parse(json), sub: 'admin' }).slice(1)}`),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'duplicate claims: "repository" twice, the second spelled with a \\u escape',
    make: (idp) => editedPayload(idp, (json) => `${json.slice(0, -1)},"rep\\u006fsitory":"acme/ops"}`),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'duplicate header members: alg twice',
    make: (idp) => editedHeader(idp, (json) => `${json.slice(0, -1)},"alg":"none"}`),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'duplicate header members: kid twice',
    make: (idp) => editedHeader(idp, (json, h) => `{"kid":"bogus",${JSON.stringify(h).slice(1)}`),
    status: 400,
    error: 'invalid_request',
  },

  // assertion replay: single use until expiry + skew
  {
    name: 'assertion replay: the same token twice',
    make: async (idp, fx) => {
      const token = await idp.github();
      assert.equal((await fx.broker.exchange(token)).status, 200);
      return token;
    },
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'assertion replay: the same jti in a token re-signed by the issuer',
    make: async (idp, fx) => {
      assert.equal((await fx.broker.exchange(await idp.github({ jti: 'jti-reused-1' }))).status, 200);
      return idp.github({ jti: 'jti-reused-1', run_number: '43' });
    },
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'assertion replay: a jti-less token replayed with its signature re-encoded (same bytes)',
    make: async (idp, fx) => {
      const token = await idp.github({ jti: null });
      assert.equal((await fx.broker.exchange(token)).status, 200);
      return reencodedSignature(token);
    },
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'assertion replay: a jti-less ES256 token replayed with its signature malleated to (r, n - s)',
    make: async (_idp, fx) => {
      const token = await fx.es.github({ jti: null });
      assert.equal((await fx.broker.exchange(token)).status, 200);
      return malleated(token);
    },
    status: 400,
    error: 'invalid_request',
  },

  // issuer: exact, trusted issuers only; unknown issuer: refuse, fetch nothing
  {
    name: 'untrusted issuer: a well-formed token from an issuer not in the trust list',
    make: (_idp, fx) => fx.untrusted.github(),
    status: 400,
    error: 'invalid_request',
    check: ({ fx }) => assert.deepEqual(fx.untrusted.fetches, { discovery: 0, jwks: 0 }, 'nothing fetched from an untrusted issuer'),
  },
  {
    name: 'untrusted issuer: a trusted iss signed with an untrusted issuer key (its kid)',
    make: async (idp, fx) => {
      const p = await parts(idp);
      return fx.untrusted.rawSign({ ...p.header, kid: fx.untrusted.kid }, p.claims, 'key');
    },
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'untrusted issuer: the trusted issuer with a trailing slash',
    make: (idp) => idp.github({ iss: `${idp.issuer}/` }),
    status: 400,
    error: 'invalid_request',
  },
  { name: 'untrusted issuer: the trusted issuer in upper case', make: (idp) => idp.github({ iss: idp.issuer.toUpperCase() }), status: 400, error: 'invalid_request' },
  { name: 'untrusted issuer: iss a number', make: (idp) => github(idp, { iss: 1 }), status: 400, error: 'invalid_request' },

  // JWKS content: only public signature keys
  {
    name: 'JWKS: a private key published in the JWKS is not used',
    make: (_idp, fx) => forged(fx.badKeys, { kid: 'leaked-private' }, { privateKey: fx.attacker.privateKey }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'JWKS: an oct key published in the JWKS is not used',
    make: (_idp, fx) => forged(fx.badKeys, { alg: 'HS256', kid: 'symmetric' }, { hmacSecret: fx.octSecret }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'JWKS: a key published with use "enc" does not verify signatures',
    make: (_idp, fx) => forged(fx.badKeys, { kid: 'encryption' }, { privateKey: fx.attacker.privateKey }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'JWKS: a malformed key (RSA without n and e) is refused, not a 500',
    make: (_idp, fx) => forged(fx.badKeys, { kid: 'malformed' }, { privateKey: fx.attacker.privateKey }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'JWKS: a 1024-bit RSA key is refused, not a 500',
    make: (_idp, fx) => forged(fx.badKeys, { kid: 'weak' }, { privateKey: fx.weakKey }),
    status: 400,
    error: 'invalid_request',
  },
  {
    name: 'JWKS: discovery and JWKS behind a redirect are not followed',
    make: (_idp, fx) => fx.redirected.github(),
    status: 400,
    error: 'invalid_request',
    check: ({ fx }) => {
      noAttackerFetch({ fx });
      assert.ok(fx.redirected.fetches.discovery >= 1, 'discovery was asked (and answered with a redirect)');
    },
  },
  {
    name: 'IdP down with no cached keys: 503 temporarily_unavailable with Retry-After',
    make: (_idp, fx) => fx.down.github(),
    status: 503,
    error: 'temporarily_unavailable',
    check: ({ res }) => assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/),
  },
];

// ---------------------------------------------------------------------------------------------

describe('POST /oauth2/token: SPEC.md 4 attack catalogue', () => {
  const fx = {} as Fixtures;
  let offset = 0;
  const now = (): number => Date.now() + offset;

  before(async () => {
    fx.now = now;
    fx.nowSec = () => Math.floor(now() / 1000);
    fx.advance = (ms) => {
      offset += ms;
    };
    const issuer = (opts: { alg?: 'RS256' | 'ES256' } = {}) => startLocalIssuer({ clock: now, ...opts });
    [fx.idp, fx.es, fx.untrusted, fx.giant, fx.many, fx.badKeys, fx.redirected, fx.down, fx.flaky, fx.attacker] = await Promise.all([
      issuer(),
      issuer({ alg: 'ES256' }),
      issuer(),
      issuer(),
      issuer(),
      issuer(),
      issuer(),
      issuer(),
      issuer(),
      startAttacker(),
    ]);

    fx.giant.setJwksBody(JSON.stringify({ keys: fx.giant.jwks().keys, padding: 'x'.repeat(1 << 20) }));
    const decoy = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const decoys = Array.from({ length: 999 }, (_, i) => ({ ...decoy, kid: `decoy-${i}`, alg: 'ES256', use: 'sig' }));
    fx.many.setJwksBody(JSON.stringify({ keys: [...decoys, ...fx.many.jwks().keys] }));

    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    fx.weakKey = weak.privateKey;
    fx.octSecret = createHash('sha256').update('attacker-chosen').digest();
    fx.badKeys.setJwksBody(
      JSON.stringify({
        keys: [
          { ...(fx.attacker.privateKey.export({ format: 'jwk' }) as JWK), kid: 'leaked-private', alg: 'RS256', use: 'sig' },
          { kty: 'oct', k: b64u(fx.octSecret), kid: 'symmetric', alg: 'HS256', use: 'sig' },
          { ...fx.attacker.publicJwk, kid: 'encryption', use: 'enc' },
          { kty: 'RSA', kid: 'malformed', alg: 'RS256', use: 'sig' },
          { ...(weak.publicKey.export({ format: 'jwk' }) as JWK), kid: 'weak', alg: 'RS256', use: 'sig' },
        ],
      }),
    );
    fx.redirected.setRedirect(`${fx.attacker.url}/redirected-jwks`);
    fx.down.setDown(true);

    const entry = (name: string, idp: LocalIssuer, extra: Record<string, unknown> = {}) => trustEntry(idp.issuer, { name, ...extra });
    fx.broker = await startTestBroker({
      now,
      config: {
        tokens: { default_ttl: '5m', max_ttl: '15m', clock_skew: '30s' },
        trust: [
          entry('ci', fx.idp),
          entry('es', fx.es, { algorithms: ['ES256'] }),
          entry('giant', fx.giant),
          entry('many', fx.many),
          entry('bad-keys', fx.badKeys),
          entry('redirected', fx.redirected),
          entry('down', fx.down),
          entry('flaky', fx.flaky),
        ],
      },
    });

    // Warm-up: the setup works, and the main and ES256 issuers' keys are cached from here on.
    for (const idp of [fx.idp, fx.es]) {
      const res = await fx.broker.exchange(await idp.github());
      assert.equal(res.status, 200, res.text);
    }
  });

  after(async () => {
    await fx.broker?.close();
    await Promise.all(
      [fx.idp, fx.es, fx.untrusted, fx.giant, fx.many, fx.badKeys, fx.redirected, fx.down, fx.flaky, fx.attacker].map((s) => s?.close()),
    );
  });

  const issuedCount = (): number => fx.broker.audit.events.filter((e) => e.type === 'token.issued').length;

  for (const row of ATTACKS) {
    it(`${row.name} -> ${row.status} ${row.error}`, row.todo ? { todo: row.todo } : {}, async () => {
      const subjectToken = await row.make(fx.idp, fx);
      const issuedBefore = issuedCount();
      const jwksBefore = fx.idp.fetches.jwks;
      const res = await fx.broker.exchange(subjectToken, row.params ?? {});
      assert.equal(res.status, row.status, res.text);
      assert.equal(res.body?.error, row.error, res.text);
      assertMatchesOpenApi('POST', '/oauth2/token', res.status, res.body);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(res.body.access_token, undefined);
      assert.equal(issuedCount(), issuedBefore, 'no token was minted');
      await row.check?.({ fx, res, jwksBefore });
    });
  }

  it('skew: exp 20 s in the past, within the 30 s leeway, is accepted', async () => {
    const t = fx.nowSec();
    const before = issuedCount();
    const res = await fx.broker.exchange(await fx.idp.github({ exp: t - 20, iat: t - 320, nbf: t - 320 }));
    assert.equal(res.status, 200, res.text);
    assertMatchesOpenApi('POST', '/oauth2/token', 200, res.body);
    assert.equal(issuedCount(), before + 1);
  });

  it('IdP down after a successful fetch: stale keys keep serving (200)', async () => {
    const first = await fx.broker.exchange(await fx.flaky.github());
    assert.equal(first.status, 200, first.text);
    const fetches = (): number => fx.flaky.fetches.discovery + fx.flaky.fetches.jwks;
    const fetched = fetches();
    fx.flaky.setDown(true);
    fx.advance(11 * 60_000); // past the 10 min max age: the broker tries a refresh, which fails
    const res = await fx.broker.exchange(await fx.flaky.github());
    assert.equal(res.status, 200, res.text);
    assertMatchesOpenApi('POST', '/oauth2/token', 200, res.body);
    // The refresh runs in the background; wait until the (failed) attempt reached the IdP.
    for (let i = 0; i < 50 && fetches() === fetched; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(fetches() > fetched, 'a refresh was attempted while the IdP was down');
    const again = await fx.broker.exchange(await fx.flaky.github());
    assert.equal(again.status, 200, again.text);
  });

  it("no row made the broker contact the attacker's server", () => {
    assert.deepEqual(fx.attacker.hits, []);
  });
});
