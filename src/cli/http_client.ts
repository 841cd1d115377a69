/** The CLI's calls to a broker: JSON or form in, JSON out, errors as `CliFailure`. */
import { request } from 'undici';

/** The server said no (exit 1), or the call could not be made. */
export class CliFailure extends Error {
  override name = 'CliFailure';
}

export interface CallOptions {
  method: 'GET' | 'POST';
  form?: Record<string, string>;
  json?: unknown;
  bearer?: string;
}

export async function callBroker(broker: string, path: string, opts: CallOptions): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let body: string | undefined;
  if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  } else if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  const url = new URL(path, broker.endsWith('/') ? broker : `${broker}/`);
  let res;
  try {
    res = await request(url, { method: opts.method, headers, body, headersTimeout: 30_000, bodyTimeout: 30_000 });
  } catch (err) {
    throw new CliFailure(`cannot reach the broker at ${url.origin}: ${(err as Error).message}`);
  }
  const text = await res.body.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (res.statusCode >= 400) {
    const err = parsed as { error?: string; error_description?: string } | undefined;
    const what = err?.error ? `${err.error}${err.error_description ? `: ${err.error_description}` : ''}` : `HTTP ${res.statusCode}`;
    throw new CliFailure(`the broker refused (${res.statusCode}): ${what}`);
  }
  return parsed;
}

/** The credential for admin/auditor commands (CONTRACT section 2). */
export function adminCredential(env: NodeJS.ProcessEnv = process.env): string {
  const credential = env.MINTGATE_TOKEN || env.MINTGATE_ADMIN_TOKEN;
  if (!credential) throw new CliFailure('set MINTGATE_TOKEN (a mintgate token with the needed scope) or MINTGATE_ADMIN_TOKEN');
  return credential;
}
