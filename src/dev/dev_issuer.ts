/**
 * The dev issuer (CONTRACT section 6): an OIDC issuer inside the broker, at `{issuer}/dev/oidc`,
 * that signs GitHub Actions-shaped assertions on request, so the whole flow can be tried with no
 * CI system. Its key lives only in memory. Exists only in dev mode.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

const ALG = 'RS256'; // what GitHub Actions signs with

export class DevIssuer {
  private constructor(
    readonly issuer: string,
    private readonly privateKey: CryptoKey,
    private readonly publicJwk: JWK,
    private readonly now: () => number,
  ) {}

  static async create(brokerIssuer: string, now: () => number = Date.now): Promise<DevIssuer> {
    const { privateKey, publicKey } = await generateKeyPair(ALG);
    const jwk = { ...(await exportJWK(publicKey)), kid: randomUUID(), alg: ALG, use: 'sig' };
    return new DevIssuer(`${brokerIssuer}/dev/oidc`, privateKey, jwk, now);
  }

  jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  discovery(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: `${this.issuer}/jwks.json`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public', 'pairwise'],
      id_token_signing_alg_values_supported: [ALG],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'repository', 'ref', 'run_id', 'run_attempt'],
    };
  }

  /** Signs an assertion: GitHub Actions-shaped defaults, overridden by `claims` (not `iss`). */
  async sign(claims: Record<string, unknown>): Promise<string> {
    const iat = Math.floor(this.now() / 1000);
    const repository = typeof claims.repository === 'string' ? claims.repository : 'acme/models';
    const ref = typeof claims.ref === 'string' ? claims.ref : 'refs/heads/main';
    const defaults: Record<string, unknown> = {
      jti: randomUUID(),
      sub: `repo:${repository}:ref:${ref}`,
      aud: 'mintgate',
      ref,
      ref_type: 'branch',
      ref_protected: 'true',
      sha: randomUUID().replace(/-/g, '') + '00000000',
      repository,
      repository_id: '100000001',
      repository_owner: repository.split('/')[0],
      repository_owner_id: '100000000',
      repository_visibility: 'private',
      run_id: String(randomInt(1_000_000, 9_999_999)),
      run_number: '1',
      run_attempt: '1',
      actor: 'dev',
      actor_id: '1',
      event_name: 'push',
      workflow: 'release',
      workflow_ref: `${repository}/.github/workflows/release.yml@${ref}`,
      job_workflow_ref: `${repository}/.github/workflows/release.yml@${ref}`,
      runner_environment: 'github-hosted',
      iat,
      nbf: iat,
      exp: iat + 300,
    };
    const payload = { ...defaults, ...claims, iss: this.issuer };
    return new SignJWT(payload).setProtectedHeader({ alg: ALG, kid: this.publicJwk.kid!, typ: 'JWT' }).sign(this.privateKey);
  }
}
