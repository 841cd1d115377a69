/**
 * The one place that decides what an error looks like on the wire. Protocol errors leave with
 * their code and public description; anything else leaves as a generic `server_error` and its
 * details stay in the log (oidc-provider's rule: nothing >= 500 is exposed).
 */
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { InvalidRequest, NotFound, OAuthError, ServerError } from './errors.js';

export function sendError(res: Response, err: OAuthError): void {
  for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
  res.setHeader('Cache-Control', 'no-store');
  res.status(err.status).json(err.toJSON());
}

/** Maps body-parser failures (size, syntax, charset) to protocol errors. */
function fromBodyParser(err: { type?: string; status?: number }): OAuthError | null {
  if (typeof err !== 'object' || err === null) return null;
  switch (err.type) {
    case 'entity.too.large':
      return new InvalidRequest('the request body is too large', undefined, 413);
    case 'entity.parse.failed':
      return new InvalidRequest('the request body is not well-formed');
    case 'parameters.too.many':
      return new InvalidRequest('too many parameters');
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new InvalidRequest('unsupported body encoding', undefined, 415);
    case 'request.aborted':
      return new InvalidRequest('the request was aborted');
    default:
      // Any other body-parser refusal (a Content-Encoding that does not decode, ...) is still
      // the client's mistake: keep its 4xx status, never let it leave as a 500.
      return typeof err.status === 'number' && err.status >= 400 && err.status < 500
        ? new InvalidRequest('the request body could not be read', err.type, err.status)
        : null;
  }
}

/**
 * What leaves the process for `err`: protocol errors as they are (their private detail logged),
 * anything else as a generic `server_error` (logged in full). Shared by every response path.
 */
export function publicError(err: unknown, log: Logger, reqId: string): OAuthError {
  let oauth: OAuthError;
  if (err instanceof OAuthError) oauth = err;
  else oauth = fromBodyParser(err as { type?: string }) ?? new ServerError();
  // 502 (the proxy's upstream is down) and 503 (a dependency is down) are deliberate answers.
  if (oauth.status >= 500 && oauth.status !== 502 && oauth.status !== 503) {
    log.error({ req_id: reqId, err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) }, 'unexpected error');
    return new ServerError();
  }
  if (oauth.detail) log.info({ req_id: reqId, error: oauth.code, detail: oauth.detail }, 'request refused');
  return oauth;
}

export function errorHandler(log: Logger) {
  // Express recognises error handlers by their four parameters.
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const oauth = publicError(err, log, req.id);
    if (res.headersSent) {
      res.end();
      return;
    }
    sendError(res, oauth);
  };
}

export function notFound(_req: Request, _res: Response, next: NextFunction): void {
  next(new NotFound());
}
