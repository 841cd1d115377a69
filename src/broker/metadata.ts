/** RFC 8414 metadata (at both well-known paths) and the JWKS. */
import type { Request, Response } from 'express';
import { SUBJECT_TOKEN_TYPES, GRANT_TYPE_TOKEN_EXCHANGE } from '../exchange/token_exchange.js';
import { PERMISSIONS } from './auth.js';
import type { BrokerContext } from './context.js';

export function serverMetadata(ctx: BrokerContext): Record<string, unknown> {
  const { issuer, trust } = ctx.config;
  const scopes = new Set<string>(PERMISSIONS);
  for (const entry of trust) for (const rule of entry.rules) for (const s of rule.grant.scopes) scopes.add(s);
  return {
    issuer,
    token_endpoint: `${issuer}/oauth2/token`,
    jwks_uri: `${issuer}/jwks.json`,
    revocation_endpoint: `${issuer}/oauth2/revoke`,
    introspection_endpoint: `${issuer}/oauth2/introspect`,
    // RFC 8414 2: required; a token-only server supports no response type.
    response_types_supported: [],
    grant_types_supported: [GRANT_TYPE_TOKEN_EXCHANGE],
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    introspection_endpoint_auth_methods_supported: ['bearer'],
    scopes_supported: [...scopes].sort(),
    subject_types_supported: ['public'],
    subject_token_types_supported: SUBJECT_TOKEN_TYPES,
  };
}

export function metadataEndpoint(ctx: BrokerContext) {
  // The metadata only changes with the config, so it is serialised once.
  const body = JSON.stringify(serverMetadata(ctx));
  return (_req: Request, res: Response): void => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.type('application/json').send(body);
  };
}

export function jwksEndpoint(ctx: BrokerContext) {
  // Short enough that a verifier refreshing every publish_ahead still sees a new key in time.
  const maxAge = Math.max(1, Math.min(60, Math.floor(ctx.config.keys.publish_ahead / 10)));
  let cachedVersion = -1;
  let cachedBody = '';
  return (_req: Request, res: Response): void => {
    if (ctx.keys.version !== cachedVersion) {
      cachedBody = JSON.stringify(ctx.keys.publicJwks());
      cachedVersion = ctx.keys.version;
    }
    res.setHeader('Cache-Control', `public, max-age=${maxAge}`);
    res.type('application/jwk-set+json').send(cachedBody);
  };
}
