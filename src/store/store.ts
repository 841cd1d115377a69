/**
 * The Store: all state the broker shares between requests (and, on Redis, between brokers).
 * `memory.ts` is the embedded reference implementation; `redis.ts` implements the same contract
 * and both pass one shared suite (test/store/store_suite.ts). Every method may reject with
 * `StoreUnavailable` when the backing service cannot be reached: callers fail closed.
 */

/** What a minted token was, kept from before it is signed until `exp` + retention. */
export interface IssuedToken {
  jti: string;
  sub: string;
  job_id: string;
  /** `entry/rule` of the trust rule that admitted the assertion. */
  client_id: string;
  aud: string;
  scope: string;
  /** NumericDate seconds. */
  iat: number;
  exp: number;
  /** The assertion it came from. */
  src: { iss: string; sub: string; jti?: string };
  /** Present when narrowed from another mintgate token (RFC 8693 4.1). */
  act?: Actor;
}

export interface Actor {
  sub: string;
  jti: string;
  act?: Actor;
}

export type RevocationKind = 'jti' | 'job' | 'sub';

/** One revocation, as stored, streamed on the feed and returned by `/admin/revocations`. */
export interface Revocation {
  /** Feed position, `<ms>-<seq>` (the Redis Stream id form); ordered. */
  id: string;
  kind: RevocationKind;
  value: string;
  reason: string;
  /** Epoch milliseconds when it was made; for `sub`, tokens issued at or before this are revoked. */
  at: number;
  /** Epoch milliseconds after which no token it can affect is alive; it is dropped then. */
  until: number;
}

export type NewRevocation = Omit<Revocation, 'id'>;

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';
export type ApprovalDecision = 'approved' | 'denied';

/**
 * A request the proxy holds until a human approves or denies it (CONTRACT sections 4 and 7).
 * Stored with status `pending`, `approved` or `denied`; a pending approval whose `expires_at`
 * has passed reads as `expired` (no write makes it so: see {@link approvalAt}).
 */
export interface Approval {
  /** `apr_` and 22 base64url characters (128 random bits); the broker makes it. */
  id: string;
  status: ApprovalStatus;
  /** The held request's token and who it speaks for. */
  jti: string;
  sub: string;
  job_id: string;
  /** The proxy route that asked for approval, and the request itself. */
  route: string;
  method: string;
  path: string;
  model?: string;
  /** Hex SHA-256 of the held request, so an approval cannot be replayed for another body. */
  request_sha256: string;
  /** Epoch milliseconds. */
  created_at: number;
  expires_at: number;
  /** The approver's subject, once decided. */
  decided_by?: string;
  /** Epoch milliseconds, once decided. */
  decided_at?: number;
}

/** What `createApproval` takes: the approval as it starts, pending and undecided. */
export type NewApproval = Omit<Approval, 'status' | 'decided_by' | 'decided_at'>;

/** The outcome of `decideApproval`. */
export type DecideOutcome =
  /** Decided now; `event_id` is its event on the feed. */
  | { outcome: 'decided'; approval: Approval; event_id: string }
  /** Already approved or denied, or expired: unchanged, as it stands. */
  | { outcome: 'conflict'; approval: Approval }
  | { outcome: 'unknown' };

/**
 * One event of the feed that proxies follow: a revocation, or the decision on an approval.
 * `id` is the event's feed position (for a revocation, the same as `revocation.id`).
 */
export type FeedEvent =
  | { type: 'revocation'; id: string; revocation: Revocation }
  | { type: 'approval'; id: string; approval: Approval };

/** Approvals are kept this long after they expire, for the record (`GET /admin/approvals`). */
export const APPROVAL_RETENTION_MS = 24 * 3600_000;

/** `listApprovals` returns at most this many: the newest created. */
export const APPROVAL_LIST_LIMIT = 1_000;

/** The approval as it reads at `now`: a pending one past its `expires_at` is `expired`. */
export function approvalAt(approval: Approval, now: number): Approval {
  return approval.status === 'pending' && approval.expires_at <= now ? { ...approval, status: 'expired' } : { ...approval };
}

/** Epoch ms after which a feed event concerns nobody and is skipped (and may be dropped). */
export function feedEventUntil(event: FeedEvent): number {
  return event.type === 'revocation' ? event.revocation.until : event.approval.expires_at;
}

/** The claims a revocation check needs. */
export interface TokenRef {
  jti: string;
  job_id: string;
  sub: string;
  /** NumericDate seconds. */
  iat: number;
  /**
   * The `jti`s of the tokens it was narrowed from (its `act` chain, nearest first): revoking a
   * token revokes every token narrowed from it, since a child never outlives its parent.
   */
  ancestors?: readonly string[];
}

/** The jtis of a token's `act` chain, nearest parent first. */
export function ancestorsOf(act: Actor | undefined): string[] {
  const out: string[] = [];
  for (let a = act; a && out.length < 32; a = a.act) out.push(a.jti);
  return out;
}

export interface Store {
  readonly kind: 'memory' | 'redis';
  /**
   * Claims an assertion for single use (`SET NX` with expiry). Resolves true the first time,
   * false on every later call until `ttlSeconds` pass.
   */
  claimAssertion(key: string, ttlSeconds: number): Promise<boolean>;
  /** Writes the issued-token record; kept for `ttlSeconds`. Must complete before signing. */
  recordIssued(token: IssuedToken, ttlSeconds: number): Promise<void>;
  getIssued(jti: string): Promise<IssuedToken | null>;
  /**
   * Stores a revocation and appends it to the feed, both or neither; resolves with it as given
   * plus its feed id. A live revocation of the same kind and value is widened, never narrowed:
   * the stored one keeps the later `at` and the later `until` of the two (the feed carries each
   * event as given).
   */
  revoke(revocation: NewRevocation): Promise<Revocation>;
  /**
   * A live revocation that covers this token, if any (which one, when several do, is
   * unspecified): its jti or an ancestor's jti, its job, or its subject revoked at or after iat.
   */
  findRevocation(token: TokenRef): Promise<Revocation | null>;
  /** The live revocation of a job, if any (new exchanges for a revoked job are refused). */
  findJobRevocation(jobId: string): Promise<Revocation | null>;
  /**
   * Feed events after `afterId` (exclusive; null: from the oldest kept), oldest first, at most
   * `limit` live ones: events past their time ({@link feedEventUntil}) are skipped, not counted,
   * so an empty page means the reader has caught up. Rejects with TypeError when `afterId` is not
   * a feed id ({@link assertFeedId}).
   */
  feedAfter(afterId: string | null, limit: number): Promise<FeedEvent[]>;
  /**
   * Like `feedAfter`, but when nothing is there yet, waits up to `waitMs` for an event before
   * answering (possibly with none). Meant for one follower loop per process, which fans events
   * out to every subscriber (Redis: XREAD BLOCK on a connection of its own).
   */
  waitForFeed(afterId: string | null, limit: number, waitMs: number): Promise<FeedEvent[]>;
  /**
   * Stores a new pending approval, kept until `expires_at` + {@link APPROVAL_RETENTION_MS}.
   * Nothing goes onto the feed: only decisions do.
   *
   * @throws TypeError when an approval with this id exists already.
   */
  createApproval(approval: NewApproval): Promise<Approval>;
  /** The approval as it reads at `now` ({@link approvalAt}), or null when unknown (or no longer kept). */
  getApproval(id: string, now: number): Promise<Approval | null>;
  /**
   * The newest approvals (at most {@link APPROVAL_LIST_LIMIT}, newest created first) as they read
   * at `now`, only those with `status` when given.
   */
  listApprovals(now: number, status?: ApprovalStatus): Promise<Approval[]>;
  /**
   * Approves or denies a pending approval at `now`, by `by`, and appends the decided approval to
   * the feed, both or neither. An approval already decided, or expired (`expires_at <= now`),
   * is left as it is: `conflict`. Of two concurrent decisions exactly one wins.
   */
  decideApproval(id: string, decision: ApprovalDecision, by: string, now: number): Promise<DecideOutcome>;
  /**
   * Claims a proxy audit event id, so that a batch shipped again (after a lost answer) is not
   * recorded twice (`SET NX` with expiry). True the first time, false until `ttlSeconds` pass.
   */
  claimAuditEvent(id: string, ttlSeconds: number): Promise<boolean>;
  /** Resolves when the store answers; rejects with StoreUnavailable otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The backing service cannot be reached; the request must fail closed (503). */
export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable';
}

/**
 * Checks that `id` is a feed id, `<ms>-<seq>` with both parts safe integers (a Redis Stream id).
 * `feedAfter` calls it on its cursor: the cursor comes from a client's `Last-Event-ID`, and
 * a garbled one must fail loudly rather than read as "nothing new" and hide every event.
 *
 * @throws TypeError when it is not.
 */
export function assertFeedId(id: string): void {
  const match = /^(\d{1,16})-(\d{1,16})$/.exec(id);
  if (!match || !Number.isSafeInteger(Number(match[1])) || !Number.isSafeInteger(Number(match[2]))) {
    throw new TypeError(`not a feed id (<ms>-<seq>): ${JSON.stringify(id.slice(0, 40))}`);
  }
}

/** Orders feed ids `<ms>-<seq>` numerically. */
export function compareFeedIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}
