/**
 * The dev-mode configuration (CONTRACT section 6): what `npm start` runs when no config file
 * is given. It trusts only the broker's own dev issuer, with one sample rule.
 */
export const DEV_AUDIENCE = 'inference-gateway';
export const DEV_SCOPES = ['inference:invoke', 'model:*'];

/** The raw config object (validated by buildBrokerConfig like any file). */
export function devConfig(issuer: string): Record<string, unknown> {
  return {
    issuer,
    store: { url: 'memory' },
    trust: [
      {
        name: 'dev',
        type: 'oidc',
        issuer: `${issuer}/dev/oidc`,
        audiences: ['mintgate'],
        algorithms: ['RS256'],
        rules: [
          {
            name: 'any-dev-job',
            // GitHub Actions-shaped, like the rule a real deployment would write.
            subject: 'claims.repository + "@" + claims.ref',
            job: 'claims.run_id + "-" + claims.run_attempt',
            grant: { audiences: [DEV_AUDIENCE], scopes: DEV_SCOPES, max_ttl: '15m' },
          },
        ],
      },
    ],
  };
}
