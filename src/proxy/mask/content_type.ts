import { Utf8Stream } from './utf8_stream.js';

/**
 * Which masker a response body gets, from its Content-Type (RFC 9110 8.3), and how its text is
 * decoded and encoded again.
 */

export type BodyKind = 'json' | 'sse' | 'text';

/** Text types outside `text/*` that carry secrets as readable text. */
const TEXTUAL = new Set([
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/json-seq',
  'application/xml',
  'application/javascript',
  'application/ecmascript',
  'application/x-www-form-urlencoded',
  'application/yaml',
  'application/x-yaml',
  'application/graphql',
  'application/sql',
]);

export interface ContentType {
  kind: BodyKind;
  /** Lower-case charset parameter, when given. */
  charset: string | undefined;
}

/**
 * The body kind of a Content-Type, or null for one that cannot be masked as text (images,
 * audio, `application/octet-stream`, PDFs, ...): those pass through untouched.
 * A missing or empty Content-Type is text: model servers sometimes omit it, and masking text
 * that turns out to be binary is safer than passing an unlabelled answer unmasked.
 */
export function classifyContentType(header: string | undefined): ContentType | null {
  const [type = '', ...params] = (header ?? '').split(';');
  const media = type.trim().toLowerCase();
  let charset: string | undefined;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq !== -1 && p.slice(0, eq).trim().toLowerCase() === 'charset') charset = p.slice(eq + 1).trim().replace(/^"|"$/g, '').toLowerCase();
  }
  if (media === '') return { kind: 'text', charset };
  if (media === 'text/event-stream') return { kind: 'sse', charset };
  if (media === 'application/json' || (media.startsWith('application/') && media.endsWith('+json'))) return { kind: 'json', charset };
  if (media.startsWith('text/') || TEXTUAL.has(media) || (media.startsWith('application/') && media.endsWith('+xml'))) return { kind: 'text', charset };
  return null;
}

/** Bytes to text (in pieces, a character split across pieces included) and back. */
export interface TextCodec {
  decode(chunk: Uint8Array, final: boolean): string;
  encode(text: string): Uint8Array;
}

/** UTF-8; a malformed sequence becomes U+FFFD (the body is text by its type); a BOM is kept. */
export function utf8Codec(): TextCodec {
  const decoder = new Utf8Stream();
  return {
    decode: (chunk, final) => decoder.decode(chunk, final),
    encode: (text) => Buffer.from(text, 'utf8'),
  };
}

/**
 * The codec for a text body's charset. UTF-16 is decoded as such (ASCII secrets would otherwise
 * hide between zero bytes); any other non-UTF-8 charset is read byte for byte as Latin-1, which
 * gives every byte back unchanged and finds secrets written in ASCII (all of the detectors'):
 * right for the ASCII-compatible charsets (ISO-8859-*, windows-125x, Shift_JIS, GB18030, ...).
 */
export function textCodec(charset: string | undefined): TextCodec {
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8' || charset === 'us-ascii') return utf8Codec();
  if (charset === 'utf-16le' || charset === 'utf-16be' || charset === 'utf-16') {
    // RFC 2781: utf-16 without a BOM is big-endian.
    const big = charset !== 'utf-16le';
    const decoder = new TextDecoder(big ? 'utf-16be' : 'utf-16le', { ignoreBOM: true });
    return {
      decode: (chunk, final) => decoder.decode(chunk, { stream: !final }),
      encode: (text) => {
        const bytes = Buffer.from(text, 'utf16le');
        return big ? bytes.swap16() : bytes;
      },
    };
  }
  return {
    decode: (chunk) => Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1'),
    encode: (text) => Buffer.from(text, 'latin1'),
  };
}
