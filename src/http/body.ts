/**
 * Reads a request body with the limits every endpoint here needs: a byte cap (413), identity
 * encoding only (a compressed body could inflate past any cap), and a clean error when the
 * client goes away. No parsing: that is params.ts.
 */
import type { IncomingMessage } from 'node:http';
import { InvalidRequest } from './errors.js';

/** 64 KiB holds any assertion (8 KiB) with room to spare. */
export const MAX_BODY_BYTES = 64 * 1024;

export function readBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<Buffer> {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    return Promise.reject(new InvalidRequest('compressed request bodies are not accepted', `content-encoding ${encoding.slice(0, 40)}`, 415));
  }
  const declared = Number(req.headers['content-length']);
  if (declared > maxBytes) return Promise.reject(new InvalidRequest('the request body is too large', undefined, 413));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null, body?: Buffer): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err) {
        // Stop reading what we will not use; the response closes the connection (413).
        req.resume();
        reject(err);
      } else resolve(body!);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) finish(new InvalidRequest('the request body is too large', undefined, 413));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(null, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = (): void => finish(new InvalidRequest('the request was aborted'));
    const onAborted = onError;
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
