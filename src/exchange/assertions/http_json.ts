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

/**
 * Why a fetch failed. `transient` is true when the IdP could not be reached or said it is
 * unwell (connection error, timeout, 408, 429, 5xx): asking again later may work. It is false
 * when the IdP answered with something we will never use (a redirect, another 4xx, a body over
 * the cap, not JSON): that is a refusal, not an outage.
 */
export class FetchJsonError extends Error {
  override name = 'FetchJsonError';
  constructor(
    message: string,
    readonly transient = false,
  ) {
    super(message);
  }
}

const isTransientStatus = (status: number): boolean => status >= 500 || status === 408 || status === 429;

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
    throw new FetchJsonError(`GET ${url}: ${(err as Error).message}`, true);
  }
  if (res.statusCode !== 200) {
    discard(res.body);
    throw new FetchJsonError(
      `GET ${url}: HTTP ${res.statusCode}${res.statusCode >= 300 && res.statusCode < 400 ? ' (redirects are not followed)' : ''}`,
      isTransientStatus(res.statusCode),
    );
  }
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    discard(res.body);
    throw new FetchJsonError(`GET ${url}: body larger than ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        discard(res.body);
        throw new FetchJsonError(`GET ${url}: body larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof FetchJsonError) throw err;
    throw new FetchJsonError(`GET ${url}: ${(err as Error).message}`, true);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new FetchJsonError(`GET ${url}: body is not JSON`);
  }
}

/**
 * Drops a response body we will not read. undici's body stream reports a destroy before its
 * end as an 'error' event (RequestAbortedError); without a listener that is an uncaught
 * exception, i.e. a crash that any IdP declaring an oversize body could trigger.
 */
function discard(body: { on(event: 'error', listener: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => undefined);
  body.destroy();
}
