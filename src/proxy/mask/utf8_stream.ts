/**
 * UTF-8 bytes to text in pieces: a character split across pieces is decoded whole. Buffer's
 * decoder (malformed sequences become U+FFFD, as with TextDecoder) on the complete part of
 * each piece; TextDecoder with `stream: true` costs several times as much per byte in Node 20.
 */
export class Utf8Stream {
  /** The first bytes of a character whose last bytes have not arrived (at most 3). */
  private carry: Buffer | null = null;

  decode(chunk: Uint8Array, final = false): string {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.carry !== null) {
      bytes = Buffer.concat([this.carry, bytes]);
      this.carry = null;
    }
    if (final) return bytes.toString('utf8');
    const cut = completeLength(bytes);
    if (cut < bytes.length) this.carry = Buffer.from(bytes.subarray(cut));
    return bytes.toString('utf8', 0, cut);
  }
}

/** Length of the prefix of `bytes` that ends on a character boundary (a trailing incomplete sequence excluded). */
function completeLength(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = n - 1;
  // Back over continuation bytes (10xxxxxx) to the lead byte of the last character.
  while (i >= 0 && i > n - 4 && (bytes[i]! & 0xc0) === 0x80) i--;
  if (i < 0) return n;
  const lead = bytes[i]!;
  const need = lead >= 0xf8 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return n - i < need ? i : n;
}
