/**
 * The proxy's copy of the broker's deny-list, fed by the revocation stream. Lookups are a few
 * map reads per request; entries are dropped once no token they could affect is alive (`until`).
 */

/** A revocation as the broker's stream sends it (`event: revocation`). */
export interface RevocationEvent {
  kind: 'jti' | 'job' | 'sub';
  value: string;
  /** Epoch ms: for `sub`, tokens issued at or before this are revoked. */
  at: number;
  /** Epoch ms after which it can be forgotten. */
  until: number;
}

/** What a revocation check needs of a verified token. */
export interface RevocableToken {
  jti: string;
  job_id: string;
  sub: string;
  /** NumericDate seconds. */
  iat: number;
  /** jtis of the tokens it was narrowed from: revoking a parent revokes its children. */
  ancestors: readonly string[];
}

export class RevocationSet {
  private readonly jtis = new Map<string, number>();
  private readonly jobs = new Map<string, number>();
  private readonly subs = new Map<string, { at: number; until: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.jtis.size + this.jobs.size + this.subs.size;
  }

  /** Adds one; a revocation already known is widened, never narrowed (as in the store). */
  add(r: RevocationEvent): void {
    if (r.until <= this.now()) return;
    if (r.kind === 'sub') {
      const known = this.subs.get(r.value);
      this.subs.set(r.value, { at: Math.max(r.at, known?.at ?? 0), until: Math.max(r.until, known?.until ?? 0) });
      return;
    }
    const map = r.kind === 'jti' ? this.jtis : this.jobs;
    map.set(r.value, Math.max(r.until, map.get(r.value) ?? 0));
  }

  /** The kind of the live revocation covering this token, or null. */
  covers(token: RevocableToken): 'jti' | 'job' | 'sub' | null {
    const now = this.now();
    if (live(this.jtis.get(token.jti), now)) return 'jti';
    for (const parent of token.ancestors) if (live(this.jtis.get(parent), now)) return 'jti';
    if (live(this.jobs.get(token.job_id), now)) return 'job';
    const sub = this.subs.get(token.sub);
    if (sub && sub.until > now && token.iat * 1000 <= sub.at) return 'sub';
    return null;
  }

  /** Forgets what has expired. */
  prune(): void {
    const now = this.now();
    for (const map of [this.jtis, this.jobs]) for (const [k, until] of map) if (until <= now) map.delete(k);
    for (const [k, v] of this.subs) if (v.until <= now) this.subs.delete(k);
  }
}

function live(until: number | undefined, now: number): boolean {
  return until !== undefined && until > now;
}
