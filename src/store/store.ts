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
   * `limit` live ones: expired events are skipped, not counted, so an empty page means the reader
   * has caught up. Rejects with TypeError when `afterId` is not a feed id ({@link assertFeedId}).
   */
  revocationsAfter(afterId: string | null, limit: number): Promise<Revocation[]>;
  /**
   * Like `revocationsAfter`, but when nothing is there yet, waits up to `waitMs` for an event
   * before answering (possibly with none). Meant for one follower loop per process, which fans
   * events out to every subscriber (Redis: XREAD BLOCK on a connection of its own).
   */
  waitForRevocations(afterId: string | null, limit: number, waitMs: number): Promise<Revocation[]>;
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
 * `revocationsAfter` calls it on its cursor: the cursor comes from a client's `Last-Event-ID`, and
 * a garbled one must fail loudly rather than read as "nothing new" and hide every revocation.
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
