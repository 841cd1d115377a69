/**
 * The embedded store: one process, nothing on disk (keys live under `keys/`, see keys/).
 * Entries carry their own expiry and are dropped lazily on read and by a periodic sweep.
 */
import { EventEmitter } from 'node:events';
import {
  APPROVAL_LIST_LIMIT,
  APPROVAL_RETENTION_MS,
  approvalAt,
  assertFeedId,
  compareFeedIds,
  feedEventUntil,
  type Approval,
  type ApprovalDecision,
  type ApprovalStatus,
  type DecideOutcome,
  type FeedEvent,
  type IssuedToken,
  type NewApproval,
  type NewRevocation,
  type Revocation,
  type Store,
  type TokenRef,
} from './store.js';

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
  private readonly auditSeen = new Map<string, number>();
  private readonly issued = new Map<string, Expiring<IssuedToken>>();
  private readonly revoked: Record<'jti' | 'job' | 'sub', Map<string, Revocation>> = {
    jti: new Map(),
    job: new Map(),
    sub: new Map(),
  };
  /** Approvals by id, kept until `expires_at` + APPROVAL_RETENTION_MS. */
  private readonly approvals = new Map<string, Expiring<Approval>>();
  private readonly feed: FeedEvent[] = [];
  private readonly feedCapacity: number;
  private lastFeedMs = 0;
  private feedSeq = 0;
  private readonly sweeper: NodeJS.Timeout | undefined;
  /** Wakes `waitForFeed` when an event is appended. */
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
    this.append({ type: 'revocation', id: stored.id, revocation: { ...stored } });
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

  async feedAfter(afterId: string | null, limit: number): Promise<FeedEvent[]> {
    if (afterId !== null) assertFeedId(afterId);
    const now = this.now();
    const start = afterId === null ? 0 : this.feed.findIndex((e) => compareFeedIds(e.id, afterId) > 0);
    if (start < 0) return [];
    return this.feed
      .slice(start)
      .filter((e) => feedEventUntil(e) > now)
      .slice(0, limit)
      .map((e) => structuredClone(e));
  }

  async waitForFeed(afterId: string | null, limit: number, waitMs: number): Promise<FeedEvent[]> {
    const ready = await this.feedAfter(afterId, limit);
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
    return this.feedAfter(afterId, limit);
  }

  async createApproval(approval: NewApproval): Promise<Approval> {
    const existing = this.approvals.get(approval.id);
    if (existing && existing.expiresAt > this.now()) throw new TypeError(`approval ${approval.id} exists already`);
    const value: Approval = { ...approval, status: 'pending' };
    this.approvals.delete(approval.id);
    this.approvals.set(approval.id, { value, expiresAt: approval.expires_at + APPROVAL_RETENTION_MS });
    return { ...value };
  }

  async getApproval(id: string, now: number): Promise<Approval | null> {
    const entry = this.approvals.get(id);
    return entry && entry.expiresAt > this.now() ? approvalAt(entry.value, now) : null;
  }

  async listApprovals(now: number, status?: ApprovalStatus): Promise<Approval[]> {
    const kept = this.now();
    // Newest created first, as Redis orders its list; ties keep the newest insertion first.
    const newest = [...this.approvals.values()]
      .filter((e) => e.expiresAt > kept)
      .reverse()
      .sort((a, b) => b.value.created_at - a.value.created_at)
      .slice(0, APPROVAL_LIST_LIMIT);
    return newest.map((e) => approvalAt(e.value, now)).filter((a) => status === undefined || a.status === status);
  }

  async decideApproval(id: string, decision: ApprovalDecision, by: string, now: number): Promise<DecideOutcome> {
    // No await between the read and the write: one turn of the event loop, so atomic.
    const entry = this.approvals.get(id);
    if (!entry || entry.expiresAt <= this.now()) return { outcome: 'unknown' };
    const current = approvalAt(entry.value, now);
    if (current.status !== 'pending') return { outcome: 'conflict', approval: current };
    entry.value = { ...entry.value, status: decision, decided_by: by, decided_at: now };
    const event_id = this.nextFeedId();
    this.append({ type: 'approval', id: event_id, approval: { ...entry.value } });
    return { outcome: 'decided', approval: { ...entry.value }, event_id };
  }

  async claimAuditEvent(id: string, ttlSeconds: number): Promise<boolean> {
    const now = this.now();
    const held = this.auditSeen.get(id);
    if (held !== undefined && held > now) return false;
    this.auditSeen.set(id, now + ttlSeconds * 1000);
    return true;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
  }

  /** Drops everything whose lifetime is over. */
  sweep(): void {
    const now = this.now();
    for (const [key, expiresAt] of this.claims) if (expiresAt <= now) this.claims.delete(key);
    for (const [key, expiresAt] of this.auditSeen) if (expiresAt <= now) this.auditSeen.delete(key);
    for (const [key, entry] of this.approvals) if (entry.expiresAt <= now) this.approvals.delete(key);
    for (const [key, entry] of this.issued) if (entry.expiresAt <= now) this.issued.delete(key);
    for (const byKind of Object.values(this.revoked)) {
      for (const [key, r] of byKind) if (r.until <= now) byKind.delete(key);
    }
    while (this.feed.length > 0 && feedEventUntil(this.feed[0]!) <= now) this.feed.shift();
  }

  private append(event: FeedEvent): void {
    this.feed.push(event);
    this.appended.emit('event');
    if (this.feed.length > this.feedCapacity) this.feed.splice(0, this.feed.length - this.feedCapacity);
  }

  private nextFeedId(): string {
    const ms = Math.max(this.now(), this.lastFeedMs);
    this.feedSeq = ms === this.lastFeedMs ? this.feedSeq + 1 : 0;
    this.lastFeedMs = ms;
    return `${ms}-${this.feedSeq}`;
  }
}
