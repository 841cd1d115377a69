/**
 * The embedded store: one process, nothing on disk (keys live under `keys/`, see keys/).
 * Entries carry their own expiry and are dropped lazily on read and by a periodic sweep.
 */
import { EventEmitter } from 'node:events';
import { assertFeedId, compareFeedIds, type IssuedToken, type NewRevocation, type Revocation, type Store, type TokenRef } from './store.js';

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

export interface MemoryStoreOptions {
  /** Epoch milliseconds; injectable for fake-clock tests. */
  now?: () => number;
  /** How many feed events the ring keeps (default 10,000). */
  feedCapacity?: number;
  /** Sweep interval in ms (default 30,000); 0 disables it. */
  sweepEveryMs?: number;
}

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly now: () => number;
  private readonly claims = new Map<string, number>();
  private readonly issued = new Map<string, Expiring<IssuedToken>>();
  private readonly revoked: Record<'jti' | 'job' | 'sub', Map<string, Revocation>> = {
    jti: new Map(),
    job: new Map(),
    sub: new Map(),
  };
  private readonly feed: Revocation[] = [];
  private readonly feedCapacity: number;
  private lastFeedMs = 0;
  private feedSeq = 0;
  private readonly sweeper: NodeJS.Timeout | undefined;
  /** Wakes `waitForRevocations` when an event is appended. */
  private readonly appended = new EventEmitter().setMaxListeners(0);

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.feedCapacity = opts.feedCapacity ?? 10_000;
    const every = opts.sweepEveryMs ?? 30_000;
    if (every > 0) {
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
  }

  async claimAssertion(key: string, ttlSeconds: number): Promise<boolean> {
    const now = this.now();
    const held = this.claims.get(key);
    if (held !== undefined && held > now) return false;
    this.claims.set(key, now + ttlSeconds * 1000);
    return true;
  }

  async recordIssued(token: IssuedToken, ttlSeconds: number): Promise<void> {
    // A copy the caller cannot reach; records are flat but for src/act, copied one level down.
    const value: IssuedToken = { ...token, src: { ...token.src }, ...(token.act ? { act: structuredClone(token.act) } : {}) };
    this.issued.set(token.jti, { value, expiresAt: this.now() + ttlSeconds * 1000 });
  }

  async getIssued(jti: string): Promise<IssuedToken | null> {
    const entry = this.issued.get(jti);
    if (!entry || entry.expiresAt <= this.now()) return null;
    return structuredClone(entry.value);
  }

  async revoke(revocation: NewRevocation): Promise<Revocation> {
    const stored: Revocation = { ...revocation, id: this.nextFeedId() };
    const byKind = this.revoked[revocation.kind];
    const existing = byKind.get(revocation.value);
    // A later revocation of the same subject moves "revoked before" forward; keep the widest.
    byKind.set(
      revocation.value,
      existing && existing.until > this.now()
        ? { ...stored, at: Math.max(existing.at, stored.at), until: Math.max(existing.until, stored.until) }
        : stored,
    );
    this.feed.push(stored);
    this.appended.emit('event');
    if (this.feed.length > this.feedCapacity) this.feed.splice(0, this.feed.length - this.feedCapacity);
    return { ...stored };
  }

  async findRevocation(token: TokenRef): Promise<Revocation | null> {
    const now = this.now();
    const live = (r: Revocation | undefined): Revocation | null => (r && r.until > now ? { ...r } : null);
    for (const jti of [token.jti, ...(token.ancestors ?? [])]) {
      const byJti = live(this.revoked.jti.get(jti));
      if (byJti) return byJti;
    }
    const byJob = live(this.revoked.job.get(token.job_id));
    if (byJob) return byJob;
    const bySub = live(this.revoked.sub.get(token.sub));
    if (bySub && token.iat * 1000 <= bySub.at) return bySub;
    return null;
  }

  async findJobRevocation(jobId: string): Promise<Revocation | null> {
    const r = this.revoked.job.get(jobId);
    return r && r.until > this.now() ? { ...r } : null;
  }

  async revocationsAfter(afterId: string | null, limit: number): Promise<Revocation[]> {
    if (afterId !== null) assertFeedId(afterId);
    const now = this.now();
    const start = afterId === null ? 0 : this.feed.findIndex((r) => compareFeedIds(r.id, afterId) > 0);
    if (start < 0) return [];
    return this.feed
      .slice(start)
      .filter((r) => r.until > now)
      .slice(0, limit)
      .map((r) => ({ ...r }));
  }

  async waitForRevocations(afterId: string | null, limit: number, waitMs: number): Promise<Revocation[]> {
    const ready = await this.revocationsAfter(afterId, limit);
    if (ready.length > 0 || waitMs <= 0) return ready;
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.appended.off('event', wake);
        resolve();
      };
      const timer = setTimeout(wake, waitMs);
      this.appended.on('event', wake);
    });
    return this.revocationsAfter(afterId, limit);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  /** Drops everything whose lifetime is over. */
  sweep(): void {
    const now = this.now();
    for (const [key, expiresAt] of this.claims) if (expiresAt <= now) this.claims.delete(key);
    for (const [key, entry] of this.issued) if (entry.expiresAt <= now) this.issued.delete(key);
    for (const byKind of Object.values(this.revoked)) {
      for (const [key, r] of byKind) if (r.until <= now) byKind.delete(key);
    }
    while (this.feed.length > 0 && this.feed[0]!.until <= now) this.feed.shift();
  }

  private nextFeedId(): string {
    const ms = Math.max(this.now(), this.lastFeedMs);
    this.feedSeq = ms === this.lastFeedMs ? this.feedSeq + 1 : 0;
    this.lastFeedMs = ms;
    return `${ms}-${this.feedSeq}`;
  }
}
