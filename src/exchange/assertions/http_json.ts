/**
 * Fetches JSON from an identity provider with the limits every outbound call here needs:
 * a timeout, a body size cap, and no redirects (a redirect could point key discovery at an
 * attacker; jose's remote JWKS follows none either).
 */
import { request } from 'undici';

export interface FetchJsonOptions {
  /** Milliseconds for the whole exchange (connect, headers and body). Default 5,000. */
  timeoutMs?: number;
  /** Body cap in bytes. Default 256 KiB. */
  maxBytes?: number;
}

export class FetchJsonError extends Error {
  override name = 'FetchJsonError';
}

/** GET `url` and parse its JSON body; throws FetchJsonError on any failure. */
export async function fetchJson(url: string, opts: FetchJsonOptions = {}): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxBytes = opts.maxBytes ?? 256 * 1024;
  const signal = AbortSignal.timeout(timeoutMs);
  let res;
  try {
    res = await request(url, {
      method: 'GET',
      headers: { accept: 'application/json, application/jwk-set+json' },
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  } catch (err) {
    throw new FetchJsonError(`GET ${url}: ${(err as Error).message}`);
  }
  if (res.statusCode !== 200) {
    res.body.resume();
    throw new FetchJsonError(`GET ${url}: HTTP ${res.statusCode}${res.statusCode >= 300 && res.statusCode < 400 ? ' (redirects are not followed)' : ''}`);
  }
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.body.destroy();
    throw new FetchJsonError(`GET ${url}: body larger than ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        res.body.destroy();
        throw new FetchJsonError(`GET ${url}: body larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof FetchJsonError) throw err;
    throw new FetchJsonError(`GET ${url}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new FetchJsonError(`GET ${url}: body is not JSON`);
  }
}
