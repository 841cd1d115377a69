/**
 * The peer: oidc-provider (test/support/oidc_provider.ts: one confidential client,
 * `client_secret_basic`, the client credentials grant) in its own process. Without a `resource`
 * parameter it issues opaque access tokens (stored through its adapter); with the helper's
 * resource indicator it issues RS256 JWT access tokens.
 */
import { startOidcProvider } from '../../test/support/oidc_provider.js';
import { serveChild } from '../support/child.js';

/** The helper's resource-indicator prefix (not exported there): it maps back to a bare `aud`. */
const AUDIENCE_URN_PREFIX = 'urn:mintgate-test:audience:';

await serveChild(async () => {
  const op = await startOidcProvider();
  return {
    info: {
      tokenEndpoint: op.tokenEndpoint,
      clientId: op.clientId,
      clientSecret: op.clientSecret,
      jwtResource: `${AUDIENCE_URN_PREFIX}${encodeURIComponent('mintgate')}`,
    },
    close: () => op.close(),
  };
});
