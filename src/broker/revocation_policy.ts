/**
 * How long a revocation must be kept: until the last token it can affect has expired
 * (DESIGN "State"). Shared by `/oauth2/revoke` and `/admin/revocations`.
 */
import type { BrokerConfig } from '../config/broker.js';
import type { NewRevocation, RevocationKind, Store } from '../store/store.js';

export async function buildRevocation(
  config: Pick<BrokerConfig, 'tokens'>,
  store: Store,
  kind: RevocationKind,
  value: string,
  reason: string,
  now: number,
  knownExp?: number,
): Promise<NewRevocation> {
  const { max_ttl, clock_skew, job_revocation_ttl } = config.tokens;
  const longestLife = (max_ttl + clock_skew) * 1000;
  let until: number;
  switch (kind) {
    case 'jti': {
      const exp = knownExp ?? (await store.getIssued(value))?.exp;
      until = exp === undefined ? now + longestLife : (exp + clock_skew) * 1000;
      break;
    }
    case 'job':
      // New exchanges for the job stay refused for job_revocation_ttl, and live tokens die.
      until = now + Math.max(job_revocation_ttl * 1000, longestLife);
      break;
    case 'sub':
      until = now + longestLife;
      break;
  }
  return { kind, value, reason, at: now, until: Math.max(until, now + 1000) };
}
