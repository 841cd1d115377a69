/**
 * The exchange every broker row measures: a GitHub Actions OIDC token (RS256, GitHub's claim
 * set, from test/support/local_issuer.ts) exchanged for an ES256 job token, under the trust
 * rule README.md shows (glob match, CEL condition, CEL subject and job).
 */
import { performance } from 'node:perf_hooks';
import type { LocalIssuer } from '../../test/support/local_issuer.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const AUDIENCE = 'inference-gateway';
export const SCOPE = 'inference:invoke model:llama-3-8b';

/** The `trust` entry of mintgate.yaml for `issuer`, as in README.md. */
export function githubTrust(issuer: string): Record<string, unknown> {
  return {
    name: 'github-actions',
    type: 'oidc',
    issuer,
    audiences: ['mintgate'],
    algorithms: ['RS256'],
    rules: [
      {
        name: 'model-release',
        match: { repository: 'acme/models', ref: 'refs/heads/*' },
        condition: 'claims.run_attempt == "1"',
        subject: 'claims.repository + "@" + claims.ref',
        job: 'claims.run_id + "-" + claims.run_attempt',
        grant: { audiences: [AUDIENCE], scopes: ['inference:invoke', 'model:llama-3-8b'], max_ttl: '10m' },
      },
    ],
  };
}

/** The form body of one exchange. */
export function exchangeForm(assertion: string): string {
  const [before, after] = exchangeFormParts();
  return `${before}${assertion}${after}`;
}

const PLACEHOLDER = 'SUBJECTTOKENPLACEHOLDER';
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * The exchange form split around the subject token, so a load generator can build each body by
 * concatenation: a compact JWS is base64url and dots, which form encoding leaves as they are.
 */
export function exchangeFormParts(): [string, string] {
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE,
    subject_token: PLACEHOLDER,
    subject_token_type: ID_TOKEN_TYPE,
    audience: AUDIENCE,
    scope: SCOPE,
  }).toString();
  const at = form.indexOf(PLACEHOLDER);
  return [form.slice(0, at), form.slice(at + PLACEHOLDER.length)];
}

/** Throws unless `token` is a compact JWS that form encoding leaves unchanged. */
export function assertFormSafe(token: string): void {
  if (!COMPACT_JWS.test(token)) throw new Error('a pre-signed assertion is not a compact JWS');
}

/**
 * Signs `count` GitHub-shaped assertions, each with its own `jti` (the broker accepts each one
 * once). jose signs through WebCrypto, which runs the RSA work on libuv's thread pool, so
 * `concurrency` signatures in flight keep every core busy without worker threads.
 */
export async function signAssertions(idp: LocalIssuer, count: number, concurrency = 16): Promise<{ tokens: string[]; perSecond: number }> {
  const tokens = new Array<string>(count);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        tokens[i] = await idp.github();
      }
    }),
  );
  return { tokens, perSecond: count / ((performance.now() - started) / 1000) };
}
