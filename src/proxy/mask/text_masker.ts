/** A text body (`text/*` other than event streams, and the fallback of the other maskers). */
import type { TextCodec } from './content_type.js';
import { TextStreamMasker } from './text_stream.js';
import type { BodyMasker, MaskCounts, MaskPolicy } from './types.js';

export function createTextMasker(policy: MaskPolicy, codec: TextCodec, counts: MaskCounts = {}): BodyMasker {
  const text = new TextStreamMasker(policy.types, counts);
  return {
    counts,
    write: (chunk) => codec.encode(text.write(codec.decode(chunk, false))),
    end: () => codec.encode(text.write(codec.decode(new Uint8Array(0), true)) + text.end()),
  };
}
