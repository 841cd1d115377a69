/**
 * Structural checks on a compact JWT before any key is looked up or any signature verified:
 * size, shape, header members that must never be honoured, duplicate keys, claim types.
 * Each failure names the rule it broke (for logs); clients get a generic description.
 */
import { parseStrictJson, StrictJsonError } from './strict_json.js';

/** 8 KiB: generous for CI and Kubernetes tokens (SPEC.md 4, "oversize"). */
export const MAX_ASSERTION_BYTES = 8192;
const MAX_KID_LENGTH = 256;
const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Header members that would make us fetch or trust keys named by the token, change how the
 * payload is read, or nest another token: never honoured, so refused outright.
 */
const FORBIDDEN_HEADER_MEMBERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit', 'b64', 'cty', 'zip', 'enc', 'p2s', 'p2c', 'epk'];

export class MalformedJwt extends Error {
  override name = 'MalformedJwt';
}

export interface DecodedJwt {
  header: Record<string, unknown> & { alg: string; kid?: string; typ?: string };
  claims: Record<string, unknown>;
}

/** Decodes and checks a compact JWS without verifying it. Throws MalformedJwt. */
export function decodeCompactJwt(token: string, maxBytes = MAX_ASSERTION_BYTES): DecodedJwt {
  if (token.length > maxBytes) throw new MalformedJwt(`token longer than ${maxBytes} bytes`);
  const parts = token.split('.');
  if (parts.length === 5) throw new MalformedJwt('JWE is not accepted');
  if (parts.length !== 3) throw new MalformedJwt('not a compact JWS');
  const [h, p, s] = parts as [string, string, string];
  if (!B64URL.test(h) || !B64URL.test(p) || !B64URL.test(s) || h === '' || p === '') {
    throw new MalformedJwt('not base64url');
  }
  if (s === '') throw new MalformedJwt('unsigned token');
  // Base64url decoders ignore the unused low bits of the last character, so one signature has
  // several spellings; only the canonical one is accepted, so that a token has one text (replay
  // keys and deny-lists hash it).
  for (const segment of parts) {
    if (Buffer.from(segment, 'base64url').toString('base64url') !== segment) throw new MalformedJwt('not canonical base64url');
  }
  const header = parseSegment(h, 'header');
  const claims = parseSegment(p, 'payload');

  if (typeof header.alg !== 'string' || header.alg === '' || header.alg.toLowerCase() === 'none') {
    throw new MalformedJwt('alg none or missing');
  }
  for (const member of FORBIDDEN_HEADER_MEMBERS) {
    if (member in header) throw new MalformedJwt(`header member "${member}" is not accepted`);
  }
  if ('kid' in header && (typeof header.kid !== 'string' || header.kid.length === 0 || header.kid.length > MAX_KID_LENGTH)) {
    throw new MalformedJwt('kid is not a short string');
  }
  if ('typ' in header && typeof header.typ !== 'string') throw new MalformedJwt('typ is not a string');
  checkClaimTypes(claims);
  return { header: header as DecodedJwt['header'], claims };
}

function parseSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseStrictJson(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch (err) {
    throw new MalformedJwt(err instanceof StrictJsonError ? `${what}: ${err.message}` : `${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedJwt(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

const isNumericDate = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);

/** RFC 7519 types, strictly: NumericDates are numbers, `aud` a string or an array of strings. */
function checkClaimTypes(claims: Record<string, unknown>): void {
  if (typeof claims.iss !== 'string' || claims.iss === '') throw new MalformedJwt('iss missing or not a string');
  if (!isNumericDate(claims.exp)) throw new MalformedJwt('exp missing or not a number');
  for (const name of ['nbf', 'iat'] as const) {
    if (name in claims && !isNumericDate(claims[name])) throw new MalformedJwt(`${name} is not a number`);
  }
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new MalformedJwt('sub missing or not a string');
  if ('jti' in claims && (typeof claims.jti !== 'string' || claims.jti === '' || claims.jti.length > 256)) {
    throw new MalformedJwt('jti is not a short string');
  }
  const aud = claims.aud;
  const audOk =
    (typeof aud === 'string' && aud !== '') ||
    (Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string' && a !== ''));
  if (!audOk) throw new MalformedJwt('aud missing or not a string / array of strings');
}
