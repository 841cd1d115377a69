/**
 * The proxy's own refusals (CONTRACT section 7). Token problems reuse the RFC 6750 errors of
 * src/http/errors.ts (401 with a WWW-Authenticate challenge, 403 insufficient_scope); these are
 * the rest, each with its fixed code in the JSON body's `error` field.
 */
import { OAuthError } from '../http/errors.js';

/** No route matches: deny by default. */
export class NoRoute extends OAuthError {
  constructor(method: string) {
    super('no_route', 403, 'no route of this proxy allows this request', { detail: `no route for ${method}` });
  }
}

/** A blocked route, or a request matching a block pattern. */
export class Blocked extends OAuthError {
  constructor(detail: string) {
    super('blocked', 403, 'this request is blocked by the proxy policy', { detail });
  }
}

/** A held request was denied, or not approved in time; the body names the approval. */
export class ApprovalRequired extends OAuthError {
  constructor(
    readonly approvalId: string,
    status: 'denied' | 'pending' | 'expired',
  ) {
    super('approval_required', 403, status === 'denied' ? 'an approver denied this request' : 'this request needs an approval that was not given in time', {
      detail: `approval ${approvalId} ${status}`,
    });
  }

  override toJSON(): { error: string; error_description: string; approval_id: string } {
    return { ...super.toJSON(), approval_id: this.approvalId };
  }
}

/** The proxy cannot decide safely right now (no keys yet, revocation feed stale, broker down for an approval). */
export class ProxyUnavailable extends OAuthError {
  constructor(description: string, detail?: string, retryAfterSeconds = 2) {
    super('temporarily_unavailable', 503, description, {
      ...(detail === undefined ? {} : { detail }),
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

/** The model server could not be reached or broke off. */
export class BadGateway extends OAuthError {
  constructor(detail: string) {
    super('bad_gateway', 502, 'the upstream model server could not be reached', { detail });
  }
}

/** The request body is larger than the proxy reads (limits.max_body_bytes). */
export class BodyTooLarge extends OAuthError {
  constructor(limit: number) {
    super('invalid_request', 413, `the request body is larger than ${limit} bytes`);
  }
}
