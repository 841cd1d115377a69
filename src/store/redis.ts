/**
 * The Redis store: the same contract as memory.ts (test/store/store_suite.ts runs on both), kept
 * in Redis so that several brokers share it (DESIGN "State", "Scale-out"). Works on a standalone
 * server, behind Sentinel and on Cluster.
 *
 * Keys, for a prefix P (default `mintgate`):
 * - `P:claim:<key>`: assertion replay claims, `SET NX EX` (single-key, so spread over the Cluster);
 * - `{P:issued}:jti:<jti>`: an issued-token record (JSON, `EX`), indexed by job and subject in
 *   the sorted sets `{P:issued}:job:<job>` and `{P:issued}:sub:<sub>` (member jti, score its
 *   expiry in epoch ms);
 * - `{P:rev}:jti|job|sub:<value>`: a live revocation (hash; expires at its `until`), and
 *   `{P:rev}:feed`: the feed, a Redis Stream whose entry ids are the feed ids (a revocation's
 *   entry has `kind value reason at until`; an approval decision's `type approval until` and the
 *   approval's fields);
 * - `{P:rev}:approval:<id>`: an approval (hash; expires `APPROVAL_RETENTION_MS` after its
 *   `expires_at`), listed newest first by the sorted set `{P:rev}:approvals` (member id, score
 *   `created_at`, trimmed to the newest `APPROVAL_LIST_LIMIT`). Approvals share the feed's hash
 *   tag because a decision and its feed event are written by one script;
 * - `P:audit-seen:<id>`: proxy audit event ids already recorded, `SET NX EX` (single-key, spread);
 * - `P:keystore`: the signing keys, encrypted with the KEK ({@link RedisKeystoreRepository}).
 * Every key one Lua script touches carries the same hash tag (`{P:issued}`, `{P:rev}`), so the
 * scripts run on Cluster; the price is that each group lives in one slot.
 *
 * Time: entries expire by the Redis server's clock (`EX`, `PEXPIREAT`); `until` values are epoch
 * ms from the broker's clock, so the two should be NTP-synchronised like any token issuer's.
 *
 * Needs Redis 6.2 or later (exclusive XRANGE starts).
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis';
import nodeJose from 'node-jose';
import { KeystoreVersionConflict, type KeystoreDoc, type KeystoreRepository } from '../keys/keystore.js';
import {
  APPROVAL_LIST_LIMIT,
  APPROVAL_RETENTION_MS,
  approvalAt,
  assertFeedId,
  StoreUnavailable,
  type Approval,
  type ApprovalDecision,
  type ApprovalStatus,
  type DecideOutcome,
  type FeedEvent,
  type IssuedToken,
  type NewApproval,
  type NewRevocation,
  type Revocation,
  type RevocationKind,
  type Store,
  type TokenRef,
} from './store.js';

/** A connected ioredis client: standalone, Sentinel-managed or Cluster. */
export type RedisClient = Redis | Cluster;

// ---------------------------------------------------------------------------------------------
// URLs and clients

/** Where a Redis URL points, parsed by {@link parseRedisUrl}. */
export type RedisTarget =
  | { mode: 'standalone'; host: string; port: number; db: number; tls: boolean; username?: string; password?: string }
  | { mode: 'sentinel'; sentinels: HostPort[]; name: string; db: number; username?: string; password?: string }
  | { mode: 'cluster'; nodes: HostPort[]; username?: string; password?: string };

/** One node of a Sentinel or Cluster URL. */
export interface HostPort {
  host: string;
  port: number;
}

const DEFAULT_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;

/**
 * Parses the store URL forms of DESIGN "State":
 * - `redis://[[user]:password@]host[:port][/db]` (port 6379, db 0 by default);
 * - `rediss://...`, the same over TLS (server name checked against `host`);
 * - `redis-sentinel://[[user]:password@]h1[:p1],h2[:p2]/master[/db]` (port 26379 by default);
 * - `redis-cluster://[[user]:password@]h1[:p1],h2[:p2]` (port 6379 by default).
 * User and password are percent-decoded and authenticate to the data nodes (with Sentinel, the
 * master and replicas; the sentinels themselves are asked without credentials). IPv6 hosts go
 * in brackets. Query strings are refused rather than silently ignored.
 *
 * @throws TypeError naming what is wrong; the password never appears in the message.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const redacted = redactRedisUrl(url);
  const fail = (why: string): never => {
    throw new TypeError(`redis URL ${redacted}: ${why}`);
  };
  const match = /^([a-z-]+):\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?([?#].*)?$/i.exec(url);
  if (!match) return fail('not a URL of the form scheme://[user:password@]host[:port][/path]');
  const [, rawScheme = '', userinfo, hostList = '', rawPath = '', rest] = match;
  const scheme = rawScheme.toLowerCase();
  if (!['redis', 'rediss', 'redis-sentinel', 'redis-cluster'].includes(scheme)) {
    fail('the scheme must be redis, rediss, redis-sentinel or redis-cluster');
  }
  if (rest) fail('query strings and fragments are not supported');
  const credentials = parseUserinfo(userinfo, fail);
  const defaultPort = scheme === 'redis-sentinel' ? DEFAULT_SENTINEL_PORT : DEFAULT_PORT;
  const hosts = hostList.split(',').map((h) => parseHostPort(h, defaultPort, fail));
  const segments = rawPath.split('/').slice(1);
  if (segments.at(-1) === '') segments.pop();
  const parseDb = (text: string): number => {
    if (!/^\d{1,5}$/.test(text)) fail(`the database must be a number, not "${text}"`);
    return Number(text);
  };

  switch (scheme) {
    case 'redis':
    case 'rediss': {
      if (hosts.length !== 1) fail(`${scheme}:// takes one host; use redis-sentinel:// or redis-cluster:// for several`);
      if (segments.length > 1) fail('the path can only be the database number');
      const db = segments.length === 1 ? parseDb(segments[0]!) : 0;
      return { mode: 'standalone', ...hosts[0]!, db, tls: scheme === 'rediss', ...credentials };
    }
    case 'redis-sentinel': {
      if (segments.length < 1 || segments.length > 2) fail('the path must be /<master name>[/<db>]');
      const name = decode(segments[0]!, fail);
      if (name === '') fail('the master name is empty');
      const db = segments.length === 2 ? parseDb(segments[1]!) : 0;
      return { mode: 'sentinel', sentinels: hosts, name, db, ...credentials };
    }
    default: {
      if (segments.length > 0) fail('a cluster URL has no path (Cluster has only database 0)');
      return { mode: 'cluster', nodes: hosts, ...credentials };
    }
  }
}

/** The URL with any password replaced by `***`, for messages and logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([^:/]*:\/\/)([^@/?#]*)@/, (_all, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return `${scheme}${colon < 0 ? '***' : `${userinfo.slice(0, colon)}:***`}@`;
  });
}

function parseUserinfo(userinfo: string | undefined, fail: (why: string) => never): { username?: string; password?: string } {
  if (userinfo === undefined || userinfo === '') return {};
  const colon = userinfo.indexOf(':');
  // `redis://secret@host` is read as a user name by some clients and as a password by others;
  // refuse to guess which one a credential is.
  if (colon < 0) return fail('write the credentials as :password@ or user:password@');
  const username = decode(userinfo.slice(0, colon), fail);
  const password = decode(userinfo.slice(colon + 1), fail);
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

function parseHostPort(text: string, defaultPort: number, fail: (why: string) => never): HostPort {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(text);
  if (!match) return fail(`"${text}" is not host[:port]`);
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port < 1 || port > 65535) fail(`port ${port} is out of range`);
  return { host, port };
}

function decode(text: string, fail: (why: string) => never): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return fail('bad percent-encoding');
  }
}

/** Connection behaviour of {@link createRedisClient}; every time is in milliseconds. */
export interface RedisClientOptions {
  /** Gives up on one connection attempt after this long (default 2,000). */
  connectTimeoutMs?: number;
  /** Fails a command that has no reply after this long (default 2,000). */
  commandTimeoutMs?: number;
  /** Longest pause between reconnection attempts (default 2,000); attempts never stop. */
  maxReconnectDelayMs?: number;
  /** Receives connection errors while the client reconnects (default: ioredis prints them). */
  onError?: (err: Error) => void;
}

/**
 * Makes an ioredis client for a store URL ({@link parseRedisUrl}) that fails fast: while Redis
 * is unreachable, commands are not queued (`enableOfflineQueue: false`) or retried more than
 * once but rejected at once, so a request fails closed with 503 instead of hanging; meanwhile
 * the client keeps reconnecting with capped exponential backoff and recovers by itself.
 * It starts connecting at once; {@link waitUntilReady} waits for the first connection.
 */
export function createRedisClient(url: string, opts: RedisClientOptions = {}): RedisClient {
  const target = parseRedisUrl(url);
  const connectTimeout = opts.connectTimeoutMs ?? 2_000;
  const commandTimeout = opts.commandTimeoutMs ?? 2_000;
  const maxDelay = opts.maxReconnectDelayMs ?? 2_000;
  // 100, 200, 400 ... ms up to maxDelay, with jitter so that brokers do not reconnect in step.
  const retryStrategy = (times: number): number => Math.min(50 * 2 ** Math.min(times, 16), maxDelay) + Math.floor(Math.random() * 100);
  const credentials = { ...(target.username ? { username: target.username } : {}), ...(target.password ? { password: target.password } : {}) };
  const common: RedisOptions = {
    ...credentials,
    connectionName: 'mintgate',
    connectTimeout,
    commandTimeout,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
  };

  let client: RedisClient;
  switch (target.mode) {
    case 'standalone':
      client = new Redis({
        ...common,
        host: target.host,
        port: target.port,
        db: target.db,
        retryStrategy,
        // SNI carries names only (RFC 6066 3); node checks the certificate against `host` either way.
        ...(target.tls ? { tls: isIP(target.host) === 0 ? { servername: target.host } : {} } : {}),
      });
      break;
    case 'sentinel':
      client = new Redis({
        ...common,
        sentinels: target.sentinels,
        name: target.name,
        db: target.db,
        retryStrategy,
        // Reconnect when the sentinels announce a new master (+switch-master). Without it, a
        // master that hangs or is cut off rather than crashing keeps its TCP connection open:
        // every command times out, nothing makes the client ask the sentinels again, and the
        // broker answers 503 long after the replica was promoted.
        failoverDetector: true,
      });
      break;
    case 'cluster': {
      const options: ClusterOptions = {
        enableOfflineQueue: false,
        clusterRetryStrategy: retryStrategy,
        slotsRefreshTimeout: connectTimeout,
        redisOptions: { ...credentials, connectionName: 'mintgate', connectTimeout, commandTimeout, maxRetriesPerRequest: 1 },
      };
      client = new Cluster(target.nodes, options);
      break;
    }
  }
  if (opts.onError) client.on('error', opts.onError);
  return client;
}

/**
 * Resolves once the client is connected and ready.
 *
 * @throws StoreUnavailable after `timeoutMs` (default 5,000) without a connection, or when the
 *   client was closed.
 */
export function waitUntilReady(client: RedisClient, timeoutMs = 5_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  if (client.status === 'end') return Promise.reject(new StoreUnavailable('redis: the client is closed'));
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('end', onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onReady = (): void => done();
    const onEnd = (): void => done(new StoreUnavailable('redis: the client is closed'));
    const timer = setTimeout(() => done(new StoreUnavailable(`redis: not reachable within ${timeoutMs} ms`)), timeoutMs);
    client.on('ready', onReady);
    client.on('end', onEnd);
  });
}

// ---------------------------------------------------------------------------------------------
// Errors and scripts

/**
 * Error replies that mean "Redis cannot serve this now" rather than "this command is wrong":
 * loading, failing over, out of memory, blocked by a script, or refusing our credentials.
 */
const UNAVAILABLE_REPLIES = new Set([
  'LOADING', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'BUSY', 'NOREPLICAS', 'OOM', 'MISCONF',
  'NOAUTH', 'WRONGPASS', 'NOPERM',
]);

function isReplyError(err: unknown): err is Error {
  return err instanceof (ReplyError as new () => Error);
}

/**
 * Turns a failure to reach Redis (refused, timed out, offline, closed, Cluster down) into
 * {@link StoreUnavailable}, so callers fail closed; any other error reply is a bug and stays.
 */
function mapRedisError(err: unknown, what: string): unknown {
  if (err instanceof StoreUnavailable) return err;
  if (isReplyError(err)) {
    const code = err.message.split(' ', 1)[0] ?? '';
    return UNAVAILABLE_REPLIES.has(code) ? new StoreUnavailable(`redis ${what}: ${code}`, { cause: err }) : err;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new StoreUnavailable(`redis ${what}: ${message}`, { cause: err });
}

async function guarded<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw mapRedisError(err, what);
  }
}

/** A Lua script run by EVALSHA, loaded with EVAL when the server does not have it yet. */
class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      // After a restart, a failover or on a Cluster node that never saw it.
      if (isReplyError(err) && err.message.startsWith('NOSCRIPT')) return client.eval(this.source, keys.length, ...keys, ...args);
      throw err;
    }
  }
}

// Server time in epoch ms, inside a script (Redis 5+ replicates script effects, so TIME is allowed).
const LUA_NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * The issue record and its indexes, in one step.
 * KEYS: record, job index, subject index. ARGV: record JSON, ttl seconds, jti.
 */
const RECORD_ISSUED = new LuaScript(`${LUA_NOW}
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
local expires = string.format('%.0f', now + ttl * 1000)
for i = 2, 3 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%.0f', now))
  redis.call('ZADD', KEYS[i], expires, ARGV[3])
  if redis.call('PTTL', KEYS[i]) < ttl * 1000 then redis.call('PEXPIRE', KEYS[i], ttl * 1000) end
end
return 1
`);

/**
 * Drops expired events from the head of the feed (KEYS[2]), as MemoryStore.sweep does: at most
 * 100 a call; readers skip expired events anywhere, so this only bounds the stream's size. Every
 * entry, revocation or approval, carries its `until`. Needs `now` (LUA_NOW).
 */
const LUA_TRIM_FEED_HEAD = `
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 100)
for _, entry in ipairs(head) do
  local fields, u = entry[2], nil
  for i = 1, #fields, 2 do
    if fields[i] == 'until' then u = tonumber(fields[i + 1]) end
  end
  if u == nil or u > now then break end
  redis.call('XDEL', KEYS[2], entry[1])
end
`;

/**
 * A revocation and its feed event, in one step: never one without the other.
 * KEYS: revocation hash, feed stream. ARGV: kind, value, reason, at, until, feed max length.
 * A live earlier revocation of the same value is widened, never narrowed: the later of the two
 * `at` (for sub: "issued at or before") and the later `until` are kept. Numbers stay the strings
 * the client sent; Lua only compares them, so no float formatting can alter them.
 */
const REVOKE = new LuaScript(`${LUA_NOW}
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*',
  'kind', ARGV[1], 'value', ARGV[2], 'reason', ARGV[3], 'at', ARGV[4], 'until', ARGV[5])
local at, untilMs = ARGV[4], ARGV[5]
local prev = redis.call('HMGET', KEYS[1], 'at', 'until')
if prev[1] and prev[2] and tonumber(prev[2]) > now then
  if tonumber(prev[1]) > tonumber(at) then at = prev[1] end
  if tonumber(prev[2]) > tonumber(untilMs) then untilMs = prev[2] end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', id, 'kind', ARGV[1], 'value', ARGV[2], 'reason', ARGV[3], 'at', at, 'until', untilMs)
redis.call('PEXPIREAT', KEYS[1], untilMs)
${LUA_TRIM_FEED_HEAD}
return id
`);

/**
 * Several hashes in one round trip (and, unlike a pipeline, on Cluster too: the keys share a
 * slot). Used for the revocations of one token (KEYS: the job hash, the subject hash, then the
 * jti hashes of the token and its ancestors) and for a page of approvals.
 */
const HGETALL_EACH = new LuaScript(`
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out
`);

/**
 * A new approval and its place in the list. KEYS: the approval hash, the list (sorted set).
 * ARGV: id, created_at, keep until (epoch ms), list length, then the hash's field-value pairs.
 * Returns 0 when the id is taken.
 */
const CREATE_APPROVAL = new LuaScript(`${LUA_NOW}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[4]) + 1))
-- The list lives as long as the longest-kept approval in it.
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) - now then redis.call('PEXPIREAT', KEYS[2], ARGV[3]) end
return 1
`);

/**
 * A decision and its feed event, in one step: never one without the other, and of two
 * concurrent decisions one wins. KEYS: the approval hash, the feed stream. ARGV: decision, by,
 * now (epoch ms, the broker's clock, as MemoryStore), feed max length.
 * Returns {0} unknown, {1, fields} conflict (as stored), {2, fields, feed id} decided.
 */
const DECIDE_APPROVAL = new LuaScript(`${LUA_NOW}
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if not f[1] then return { 0 } end
if f[1] ~= 'pending' or tonumber(f[2]) <= tonumber(ARGV[3]) then
  return { 1, redis.call('HGETALL', KEYS[1]) }
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'decided_by', ARGV[2], 'decided_at', ARGV[3])
local fields = redis.call('HGETALL', KEYS[1])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'type', 'approval', 'until', f[2], unpack(fields))
${LUA_TRIM_FEED_HEAD}
return { 2, fields, id }
`);

// ---------------------------------------------------------------------------------------------
// The store

export interface RedisStoreOptions {
  /** Epoch milliseconds, for the defence-in-depth `until` checks on read (default Date.now). */
  now?: () => number;
  /** About how many feed events the stream keeps at most (`XADD MAXLEN ~`, default 100,000). */
  feedMaxLength?: number;
}

/** XRANGE page size while skipping expired feed events. */
const FEED_PAGE = 100;

/**
 * The Store on Redis. `close()` ends the client it was given (share that client with
 * {@link RedisKeystoreRepository}, which never closes it).
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly now: () => number;
  private readonly feedMaxLength: number;
  private readonly keys: {
    claim(key: string): string;
    issued(jti: string): string;
    issuedByJob(job: string): string;
    issuedBySub(sub: string): string;
    revocation(kind: RevocationKind, value: string): string;
    feed: string;
    approval(id: string): string;
    approvals: string;
    auditEvent(id: string): string;
  };
  private closed = false;
  /** The connection for blocking feed reads, made on first use. */
  private blocking: RedisClient | undefined;

  /**
   * @param client a client from {@link createRedisClient} (or any ioredis client).
   * @param prefix starts every key (default `mintgate`); several deployments can share a Redis
   *   with different prefixes. Braces are refused: they would change the hash tags.
   */
  constructor(
    private readonly client: RedisClient,
    prefix = 'mintgate',
    opts: RedisStoreOptions = {},
  ) {
    checkPrefix(prefix);
    this.now = opts.now ?? Date.now;
    this.feedMaxLength = opts.feedMaxLength ?? 100_000;
    const issued = `{${prefix}:issued}`;
    const rev = `{${prefix}:rev}`;
    this.keys = {
      claim: (key) => `${prefix}:claim:${key}`,
      issued: (jti) => `${issued}:jti:${jti}`,
      issuedByJob: (job) => `${issued}:job:${job}`,
      issuedBySub: (sub) => `${issued}:sub:${sub}`,
      revocation: (kind, value) => `${rev}:${kind}:${value}`,
      feed: `${rev}:feed`,
      approval: (id) => `${rev}:approval:${id}`,
      approvals: `${rev}:approvals`,
      auditEvent: (id) => `${prefix}:audit-seen:${id}`,
    };
  }

  async claimAssertion(key: string, ttlSeconds: number): Promise<boolean> {
    const reply = await guarded('claim', () => this.client.set(this.keys.claim(key), '1', 'EX', wholeSeconds(ttlSeconds), 'NX'));
    return reply === 'OK';
  }

  async recordIssued(token: IssuedToken, ttlSeconds: number): Promise<void> {
    const keys = [this.keys.issued(token.jti), this.keys.issuedByJob(token.job_id), this.keys.issuedBySub(token.sub)];
    await guarded('record', () => RECORD_ISSUED.run(this.client, keys, [JSON.stringify(token), wholeSeconds(ttlSeconds), token.jti]));
  }

  async getIssued(jti: string): Promise<IssuedToken | null> {
    const text = await guarded('read record', () => this.client.get(this.keys.issued(jti)));
    return text === null ? null : (JSON.parse(text) as IssuedToken);
  }

  async revoke(revocation: NewRevocation): Promise<Revocation> {
    const { kind, value, reason, at, until } = revocation;
    if (!Number.isSafeInteger(at) || !Number.isSafeInteger(until)) throw new TypeError('revocation at and until must be integer epoch milliseconds');
    const keys = [this.keys.revocation(kind, value), this.keys.feed];
    const id = await guarded('revoke', () => REVOKE.run(this.client, keys, [kind, value, reason, String(at), String(until), this.feedMaxLength]));
    return { id: String(id), kind, value, reason, at, until };
  }

  async findRevocation(token: TokenRef): Promise<Revocation | null> {
    const jtis = [token.jti, ...(token.ancestors ?? [])];
    const keys = [this.keys.revocation('job', token.job_id), this.keys.revocation('sub', token.sub), ...jtis.map((j) => this.keys.revocation('jti', j))];
    const replies = (await guarded('find revocation', () => HGETALL_EACH.run(this.client, keys, []))) as string[][];
    const now = this.now();
    const [byJob, bySub, ...byJti] = replies.map((fields) => liveRevocation(pairsToRecord(fields), now));
    const jtiHit = byJti.find((r) => r !== null);
    if (jtiHit) return jtiHit;
    if (byJob) return byJob;
    if (bySub && token.iat * 1000 <= bySub.at) return bySub;
    return null;
  }

  async findJobRevocation(jobId: string): Promise<Revocation | null> {
    const fields = await guarded('find revocation', () => this.client.hgetall(this.keys.revocation('job', jobId)));
    return liveRevocation(fields, this.now());
  }

  async feedAfter(afterId: string | null, limit: number): Promise<FeedEvent[]> {
    if (afterId !== null) assertFeedId(afterId);
    const out: FeedEvent[] = [];
    let start = afterId === null ? '-' : `(${afterId}`;
    const now = this.now();
    // Expired events are skipped, not counted: a short page means the reader has caught up.
    while (out.length < limit) {
      const count = Math.max(limit - out.length, FEED_PAGE);
      const entries = await guarded('read feed', () => this.client.xrange(this.keys.feed, start, '+', 'COUNT', count));
      for (const [id, fields] of entries) {
        const event = liveFeedEvent(id, pairsToRecord(fields), now);
        if (event && out.length < limit) out.push(event);
      }
      if (entries.length < count) break;
      start = `(${entries.at(-1)![0]}`;
    }
    return out;
  }

  async waitForFeed(afterId: string | null, limit: number, waitMs: number): Promise<FeedEvent[]> {
    const ready = await this.feedAfter(afterId, limit);
    if (ready.length > 0 || waitMs <= 0) return ready;
    // A blocking read gets a connection of its own, so it never holds up other commands. Blocks
    // stay under the command timeout (2 s): longer waits are the caller's loop.
    if (this.blocking === undefined) {
      this.blocking = this.client instanceof Cluster ? this.client.duplicate() : this.client.duplicate();
      // duplicate() copies the options, not the listeners: hand its connection errors to the
      // same handlers as the main client's (createRedisClient's onError), or ioredis prints each
      // failed reconnection on stderr during an outage.
      for (const listener of this.client.listeners('error')) this.blocking.on('error', listener as (err: Error) => void);
    }
    const block = Math.max(1, Math.min(waitMs, 1_500));
    await waitUntilReady(this.blocking, 2_000);
    await guarded('wait for feed', () => this.blocking!.xread('COUNT', 1, 'BLOCK', block, 'STREAMS', this.keys.feed, afterId ?? '0-0'));
    return this.feedAfter(afterId, limit);
  }

  async createApproval(approval: NewApproval): Promise<Approval> {
    const stored: Approval = { ...approval, status: 'pending' };
    const { created_at, expires_at } = stored;
    if (!Number.isSafeInteger(created_at) || !Number.isSafeInteger(expires_at)) throw new TypeError('approval created_at and expires_at must be integer epoch milliseconds');
    const keepUntil = expires_at + APPROVAL_RETENTION_MS;
    const args = [stored.id, String(created_at), String(keepUntil), APPROVAL_LIST_LIMIT, ...approvalFields(stored)];
    const created = await guarded('create approval', () => CREATE_APPROVAL.run(this.client, [this.keys.approval(stored.id), this.keys.approvals], args));
    if (created !== 1) throw new TypeError(`approval ${stored.id} exists already`);
    return stored;
  }

  async getApproval(id: string, now: number): Promise<Approval | null> {
    const fields = await guarded('read approval', () => this.client.hgetall(this.keys.approval(id)));
    const approval = approvalFromRecord(fields);
    return approval && approvalAt(approval, now);
  }

  async listApprovals(now: number, status?: ApprovalStatus): Promise<Approval[]> {
    const ids = await guarded('list approvals', () => this.client.zrevrange(this.keys.approvals, 0, APPROVAL_LIST_LIMIT - 1));
    if (ids.length === 0) return [];
    const replies = (await guarded('list approvals', () => HGETALL_EACH.run(this.client, ids.map((id) => this.keys.approval(id)), []))) as string[][];
    const out: Approval[] = [];
    // Ids whose approval is no longer kept are skipped (the list outlives some of its members).
    for (const fields of replies) {
      const approval = approvalFromRecord(pairsToRecord(fields));
      if (approval === null) continue;
      const current = approvalAt(approval, now);
      if (status === undefined || current.status === status) out.push(current);
    }
    return out;
  }

  async decideApproval(id: string, decision: ApprovalDecision, by: string, now: number): Promise<DecideOutcome> {
    if (!Number.isSafeInteger(now)) throw new TypeError('now must be integer epoch milliseconds');
    const reply = (await guarded('decide approval', () =>
      DECIDE_APPROVAL.run(this.client, [this.keys.approval(id), this.keys.feed], [decision, by, String(now), this.feedMaxLength]),
    )) as [0] | [1, string[]] | [2, string[], string];
    if (reply[0] === 0) return { outcome: 'unknown' };
    const approval = approvalFromRecord(pairsToRecord(reply[1]));
    // Defence in depth: the script only answers with a hash it just read.
    if (approval === null) return { outcome: 'unknown' };
    if (reply[0] === 1) return { outcome: 'conflict', approval: approvalAt(approval, now) };
    return { outcome: 'decided', approval, event_id: String(reply[2]) };
  }

  async claimAuditEvent(id: string, ttlSeconds: number): Promise<boolean> {
    const reply = await guarded('claim audit event', () => this.client.set(this.keys.auditEvent(id), '1', 'EX', wholeSeconds(ttlSeconds), 'NX'));
    return reply === 'OK';
  }

  async ping(): Promise<void> {
    await guarded('ping', () => this.client.ping());
    if (this.client instanceof Cluster) {
      // Any live node answers PING; only cluster_state:ok says every slot (every key) is served.
      const info = String(await guarded('cluster info', () => (this.client as Cluster).cluster('INFO')));
      if (!/cluster_state:ok/.test(info)) throw new StoreUnavailable('redis cluster: cluster_state is not ok');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.blocking?.disconnect();
    try {
      await this.client.quit();
    } catch {
      // Not connected (Redis down): nothing to say goodbye to.
    } finally {
      // Stops reconnecting, and ends what QUIT leaves open: with Sentinel, the failover
      // detector's subscriptions to every sentinel, which would otherwise reconnect forever and
      // keep the process alive.
      this.client.disconnect();
    }
  }
}

function checkPrefix(prefix: string): void {
  if (prefix === '' || /[{}]/.test(prefix)) throw new TypeError(`redis key prefix "${prefix}": must be non-empty and without braces`);
}

/** `EX` takes whole seconds and refuses 0; a claim or record never lives shorter than asked. */
function wholeSeconds(ttlSeconds: number): number {
  return Math.max(1, Math.ceil(ttlSeconds));
}

function pairsToRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

const KINDS: ReadonlySet<string> = new Set<RevocationKind>(['jti', 'job', 'sub']);

/**
 * A stored revocation or a revocation's feed entry, or null when there is none or its `until`
 * has passed. Redis drops the key at `until` itself; checking again here is defence in depth.
 */
function liveRevocation(fields: Record<string, string>, now: number): Revocation | null {
  const { id, kind, value, reason, at, until } = fields;
  if (id === undefined || kind === undefined || value === undefined || at === undefined || until === undefined || !KINDS.has(kind)) return null;
  const revocation: Revocation = { id, kind: kind as RevocationKind, value, reason: reason ?? '', at: Number(at), until: Number(until) };
  return revocation.until > now ? revocation : null;
}

/**
 * A feed entry as an event, or null when it has expired or is not one we know. Entries without
 * a `type` are revocations (the form they had before approvals joined the feed).
 */
function liveFeedEvent(id: string, fields: Record<string, string>, now: number): FeedEvent | null {
  if (fields.type === 'approval') {
    const approval = approvalFromRecord(fields);
    return approval && approval.expires_at > now ? { type: 'approval', id, approval } : null;
  }
  if (fields.type !== undefined) return null;
  const revocation = liveRevocation({ ...fields, id }, now);
  return revocation && { type: 'revocation', id, revocation };
}

const APPROVAL_STATUSES: ReadonlySet<string> = new Set<ApprovalStatus>(['pending', 'approved', 'denied']);

/** An approval as hash fields: every value a string, optional members only when present. */
function approvalFields(a: Approval): string[] {
  const out = [
    'id', a.id, 'status', a.status, 'jti', a.jti, 'sub', a.sub, 'job_id', a.job_id, 'route', a.route, 'method', a.method,
    'path', a.path, 'request_sha256', a.request_sha256, 'created_at', String(a.created_at), 'expires_at', String(a.expires_at),
  ];
  if (a.model !== undefined) out.push('model', a.model);
  if (a.decided_by !== undefined) out.push('decided_by', a.decided_by);
  if (a.decided_at !== undefined) out.push('decided_at', String(a.decided_at));
  return out;
}

/** The approval stored in these hash fields (or a feed entry's), or null when it is not one. */
function approvalFromRecord(f: Record<string, string>): Approval | null {
  const { id, status, jti, sub, job_id, route, method, path, model, request_sha256, created_at, expires_at, decided_by, decided_at } = f;
  if (
    id === undefined || status === undefined || !APPROVAL_STATUSES.has(status) || jti === undefined || sub === undefined || job_id === undefined ||
    route === undefined || method === undefined || path === undefined || request_sha256 === undefined || created_at === undefined || expires_at === undefined
  ) {
    return null;
  }
  return {
    id, status: status as ApprovalStatus, jti, sub, job_id, route, method, path,
    ...(model === undefined ? {} : { model }),
    request_sha256, created_at: Number(created_at), expires_at: Number(expires_at),
    ...(decided_by === undefined ? {} : { decided_by }),
    ...(decided_at === undefined ? {} : { decided_at: Number(decided_at) }),
  };
}

// ---------------------------------------------------------------------------------------------
// The keystore in Redis

/** The keystore in Redis cannot be read: another KEK, a foreign format, or tampering. */
export class KeystoreUnreadable extends Error {
  override name = 'KeystoreUnreadable';
}

export { KeystoreVersionConflict };

const KEYSTORE_FORMAT = 'mintgate-keystore/1';
/** JWE algorithms, and the only ones accepted on decryption (an allow-list, not "whatever the header says"). */
const KEY_WRAP = 'A256KW';
const CONTENT_ENC = 'A256GCM';

/**
 * Compare-and-set of the keystore hash. KEYS: the hash. ARGV: expected version ("0": none yet),
 * format, new version, JWE. Returns {1, new version} or {0, version found}.
 */
const SAVE_KEYSTORE_IF_VERSION = new LuaScript(`
local current = redis.call('HGET', KEYS[1], 'version')
if not current then current = '0' end
if current ~= ARGV[1] then return { 0, current } end
redis.call('HSET', KEYS[1], 'format', ARGV[2], 'version', ARGV[3], 'jwe', ARGV[4])
return { 1, ARGV[3] }
`);

/**
 * Keeps the keystore in Redis so that every broker signs with the same keys (DESIGN "Signing
 * keys"). The document is a compact JWE (node-jose: `A256KW` key wrap with the 32-byte KEK,
 * `MINTGATE_KEK`, then `A256GCM`), so Redis, its backups and its replicas never see a private
 * key. Stored as the hash `P:keystore` with `format`, `version` and `jwe`: `version` is readable
 * without the KEK (replicas poll it, {@link RedisKeystoreRepository.loadVersion}), and is also
 * sealed in the JWE's protected header, so a `version` edited in Redis is detected on load.
 *
 * Writes are compare-and-set on the version in one Lua script: of two brokers rotating at
 * once, one wins and the other gets {@link KeystoreVersionConflict} instead of overwriting it.
 */
export class RedisKeystoreRepository implements KeystoreRepository {
  private readonly key: string;
  private readonly kekId: string;
  private readonly kek: Promise<nodeJose.JWK.Key>;

  constructor(
    private readonly client: RedisClient,
    kek: Uint8Array,
    prefix = 'mintgate',
  ) {
    checkPrefix(prefix);
    if (kek.length !== 32) throw new TypeError('the keystore KEK must be exactly 32 bytes');
    this.key = `${prefix}:keystore`;
    // Names the KEK without revealing it, so a load under another KEK can say so plainly.
    this.kekId = createHash('sha256').update('mintgate KEK id\0').update(kek).digest('base64url').slice(0, 16);
    this.kek = nodeJose.JWK.asKey({ kty: 'oct', k: Buffer.from(kek).toString('base64url'), alg: KEY_WRAP, use: 'enc', kid: this.kekId });
  }

  /** The stored version without decrypting anything; null when there is no keystore. */
  async loadVersion(): Promise<number | null> {
    const version = await guarded('keystore version', () => this.client.hget(this.key, 'version'));
    return version === null ? null : Number(version);
  }

  async load(): Promise<KeystoreDoc | null> {
    const [format, version, jwe] = await guarded('keystore load', () => this.client.hmget(this.key, 'format', 'version', 'jwe'));
    if (format === null && version === null && jwe === null) return null;
    const where = `keystore in Redis (${this.key})`;
    if (format !== KEYSTORE_FORMAT || !version || !jwe) throw new KeystoreUnreadable(`${where}: not a ${KEYSTORE_FORMAT} record`);
    const header = protectedHeader(jwe);
    if (header === null) throw new KeystoreUnreadable(`${where}: not a compact JWE`);
    if (header.kid !== this.kekId) {
      throw new KeystoreUnreadable(`${where}: encrypted under another MINTGATE_KEK (key id ${String(header.kid)}; this broker's is ${this.kekId})`);
    }
    let plaintext: Buffer;
    try {
      const result = await nodeJose.JWE.createDecrypt(await this.kek, { algorithms: [KEY_WRAP, CONTENT_ENC] }).decrypt(jwe);
      plaintext = result.plaintext;
    } catch {
      throw new KeystoreUnreadable(`${where}: cannot be decrypted with this MINTGATE_KEK (wrong key or tampered record)`);
    }
    let doc: KeystoreDoc;
    try {
      doc = JSON.parse(plaintext.toString('utf8')) as KeystoreDoc;
    } catch {
      throw new KeystoreUnreadable(`${where}: the decrypted document is not JSON`);
    }
    if (!Array.isArray(doc.keys) || typeof doc.version !== 'number') throw new KeystoreUnreadable(`${where}: not a mintgate keystore`);
    // The plain `version` is what replicas compare; it must be the one that was encrypted.
    if (String(doc.version) !== version || header.keystore_version !== doc.version) {
      throw new KeystoreUnreadable(`${where}: the version field (${version}) does not match the encrypted document (${doc.version})`);
    }
    return doc;
  }

  /**
   * Saves `doc` if the stored version is `doc.version - 1` (none stored counts as version 0),
   * which is how KeyManager numbers its changes.
   *
   * @throws KeystoreVersionConflict when another broker saved first.
   */
  async save(doc: KeystoreDoc): Promise<void> {
    const result = await this.saveIfVersion(doc, doc.version - 1);
    if (!result.saved) throw new KeystoreVersionConflict(doc.version - 1, result.version);
  }

  /**
   * Compare-and-set: writes `doc` only if the stored version is `expectedVersion` (0: nothing
   * stored yet).
   *
   * @returns `saved`, and the version now stored (`doc.version`, or the one that won).
   * @throws TypeError when `doc.version` does not exceed `expectedVersion`: versions only grow,
   *   or replicas could miss a change.
   */
  async saveIfVersion(doc: KeystoreDoc, expectedVersion: number): Promise<{ saved: boolean; version: number }> {
    if (!Number.isSafeInteger(doc.version) || !Number.isSafeInteger(expectedVersion) || doc.version <= expectedVersion) {
      throw new TypeError(`keystore version ${doc.version} must be an integer above the expected ${expectedVersion}`);
    }
    const jwe = await nodeJose.JWE.createEncrypt(
      { format: 'compact', contentAlg: CONTENT_ENC, fields: { cty: 'json', keystore_version: doc.version } },
      await this.kek,
    )
      .update(Buffer.from(JSON.stringify(doc), 'utf8'))
      .final();
    const reply = (await guarded('keystore save', () =>
      SAVE_KEYSTORE_IF_VERSION.run(this.client, [this.key], [String(expectedVersion), KEYSTORE_FORMAT, String(doc.version), jwe]),
    )) as [number, string];
    return { saved: reply[0] === 1, version: Number(reply[1]) };
  }
}

/** The decoded protected header of a compact JWE (5 parts), or null. */
function protectedHeader(jwe: string): Record<string, unknown> | null {
  const parts = jwe.split('.');
  if (parts.length !== 5) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as unknown;
    return header !== null && typeof header === 'object' && !Array.isArray(header) ? (header as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
