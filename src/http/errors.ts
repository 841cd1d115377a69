/**
 * Protocol errors. Each subclass carries its fixed RFC 6749 / 8693 / 6750 `error` code and HTTP
 * status; `description` is public (it reaches the client), `detail` is private (logs only).
 * Neither ever contains a token or a secret: only identifiers such as a `jti` or an issuer.
 */
export class OAuthError extends Error {
  readonly code: string;
  readonly status: number;
  readonly description: string;
  readonly detail: string | undefined;
  /** Extra response headers (Retry-After, WWW-Authenticate). */
  readonly headers: Record<string, string>;

  constructor(
    code: string,
    status: number,
    description: string,
    opts: { detail?: string; headers?: Record<string, string> } = {},
  ) {
    super(`${code}: ${description}`);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.description = description;
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }

  /** The JSON body every mintgate error uses: `{error, error_description}`. */
  toJSON(): { error: string; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

/** RFC 6749 5.2 / RFC 8693 2.2.2: malformed request, or a subject token we will not accept. */
export class InvalidRequest extends OAuthError {
  constructor(description: string, detail?: string, status = 400) {
    super('invalid_request', status, description, detail === undefined ? {} : { detail });
  }
}

/** RFC 6749 5.2: a requested scope is not granted. */
export class InvalidScope extends OAuthError {
  constructor(description: string, detail?: string) {
    super('invalid_scope', 400, description, detail === undefined ? {} : { detail });
  }
}

/** RFC 8693 2.2.2: the audience or resource is not one this subject may get a token for. */
export class InvalidTarget extends OAuthError {
  constructor(description: string, detail?: string) {
    super('invalid_target', 400, description, detail === undefined ? {} : { detail });
  }
}

/** RFC 6749 5.2. */
export class UnsupportedGrantType extends OAuthError {
  constructor(grantType: string) {
    super('unsupported_grant_type', 400, 'only urn:ietf:params:oauth:grant-type:token-exchange is supported', {
      detail: `grant_type=${grantType.slice(0, 100)}`,
    });
  }
}

/**
 * 429 with Retry-After. The code is RFC 8628's registered `slow_down`: the only registered
 * OAuth error that means "you are asking too often".
 */
export class SlowDown extends OAuthError {
  constructor(by: 'subject' | 'address', retryAfterSeconds: number) {
    super('slow_down', 429, `too many token requests for this ${by}; retry later`, {
      detail: `${by} over its rate limit`,
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    });
  }
}

/** 503 with Retry-After: a dependency (the store) is down. RFC 7009 2.2.1 uses the same. */
export class TemporarilyUnavailable extends OAuthError {
  constructor(detail?: string, retryAfterSeconds = 2) {
    super('temporarily_unavailable', 503, 'the token service is temporarily unavailable; retry later', {
      ...(detail === undefined ? {} : { detail }),
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

const bearerChallenge = (attrs: Record<string, string>): string =>
  ['Bearer realm="mintgate"', ...Object.entries(attrs).map(([k, v]) => `${k}="${v.replace(/["\\]/g, '\\$&')}"`)].join(', ');

/** RFC 6750 3.1: no credentials at all: 401 with a challenge that carries no error code. */
export class MissingCredentials extends OAuthError {
  constructor() {
    super('invalid_request', 401, 'a bearer token is required', {
      headers: { 'WWW-Authenticate': bearerChallenge({}) },
    });
  }
}

/** RFC 6750 3.1: a bad, expired, revoked or foreign bearer token. */
export class InvalidToken extends OAuthError {
  constructor(detail?: string) {
    super('invalid_token', 401, 'the bearer token is not valid', {
      ...(detail === undefined ? {} : { detail }),
      headers: { 'WWW-Authenticate': bearerChallenge({ error: 'invalid_token' }) },
    });
  }
}

/** RFC 6750 3.1: a valid token without the permission the endpoint needs. */
export class InsufficientScope extends OAuthError {
  constructor(scope: string) {
    super('insufficient_scope', 403, `this operation needs the scope ${scope}`, {
      headers: { 'WWW-Authenticate': bearerChallenge({ error: 'insufficient_scope', scope }) },
    });
  }
}

export class NotFound extends OAuthError {
  constructor(description = 'no such resource') {
    super('not_found', 404, description);
  }
}

/** The resource is not in a state that allows this (e.g. an approval already decided or expired). */
export class Conflict extends OAuthError {
  constructor(description: string) {
    super('conflict', 409, description);
  }
}

/** Anything unexpected leaves the process as this, with no detail (oidc-provider's rule). */
export class ServerError extends OAuthError {
  constructor(detail?: string) {
    super('server_error', 500, 'internal error', detail === undefined ? {} : { detail });
  }
}
