/**
 * JSON.parse keeps the last of duplicate keys silently (`{"sub":"a","sub":"admin"}` reads as
 * admin), so JOSE headers and claim sets are scanned for duplicates, and for depth, before they
 * are trusted (RFC 8725 3.x; SPEC.md attack catalogue "duplicate claims", "oversize").
 */

const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const QUOTE = 0x22;

export class StrictJsonError extends Error {
  override name = 'StrictJsonError';
}

/** Parses JSON, refusing duplicate object keys and nesting deeper than `maxDepth`. */
export function parseStrictJson(text: string, maxDepth = 16): unknown {
  const value = JSON.parse(text) as unknown; // syntax errors surface here, with JSON's own message
  scan(text, maxDepth);
  return value;
}

/** One pass over already-valid JSON text, tracking the keys of each open object. */
function scan(text: string, maxDepth: number): void {
  const stack: Array<Set<string> | null> = []; // null marks an array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === OPEN_OBJECT || ch === OPEN_ARRAY) {
      stack.push(ch === OPEN_OBJECT ? new Set() : null);
      if (stack.length > maxDepth) throw new StrictJsonError(`JSON nested deeper than ${maxDepth}`);
      expectKey = ch === OPEN_OBJECT;
    } else if (ch === CLOSE_OBJECT || ch === CLOSE_ARRAY) {
      stack.pop();
      expectKey = false;
    } else if (ch === COMMA) {
      expectKey = stack[stack.length - 1] instanceof Set;
    } else if (ch === QUOTE) {
      const { end, escaped } = stringEnd(text, i);
      if (expectKey) {
        // Only keys with escapes need decoding (`"s\u0075b"` is `"sub"`); the rest are literal.
        const key = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        const keys = stack[stack.length - 1] as Set<string>;
        if (keys.has(key)) throw new StrictJsonError(`duplicate key "${key.slice(0, 40)}"`);
        keys.add(key);
        expectKey = false;
      }
      i = end;
    }
  }
}

/** The closing quote of the string opening at `start` (jumping with indexOf), and whether it has escapes. */
function stringEnd(text: string, start: number): { end: number; escaped: boolean } {
  let escaped = false;
  let from = start + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) throw new StrictJsonError('unterminated string');
    const backslash = text.indexOf('\\', from);
    if (backslash < 0 || backslash > quote) return { end: quote, escaped };
    escaped = true;
    from = backslash + 2; // skip the escaped character, whatever it is
  }
}
