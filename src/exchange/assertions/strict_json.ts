/**
 * JSON.parse keeps the last of duplicate keys silently (`{"sub":"a","sub":"admin"}` reads as
 * admin), so JOSE headers and claim sets are scanned for duplicates, and for depth, before they
 * are trusted (RFC 8725 3.x; SPEC.md attack catalogue "duplicate claims", "oversize").
 */

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
    const ch = text[i];
    if (ch === '{' || ch === '[') {
      stack.push(ch === '{' ? new Set() : null);
      if (stack.length > maxDepth) throw new StrictJsonError(`JSON nested deeper than ${maxDepth}`);
      expectKey = ch === '{';
    } else if (ch === '}' || ch === ']') {
      stack.pop();
      expectKey = false;
    } else if (ch === ',') {
      expectKey = stack.at(-1) instanceof Set;
    } else if (ch === '"') {
      const end = stringEnd(text, i);
      if (expectKey) {
        // Only keys with escapes need decoding (`"s\u0075b"` is `"sub"`); the rest are literal.
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const keys = stack.at(-1) as Set<string>;
        if (keys.has(key)) throw new StrictJsonError(`duplicate key "${key.slice(0, 40)}"`);
        keys.add(key);
        expectKey = false;
      }
      i = end;
    }
  }
}

function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  throw new StrictJsonError('unterminated string');
}
