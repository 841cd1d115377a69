/**
 * Token requests per minute, per subject (`limits.exchanges_per_subject_per_minute`) and per
 * client address (`limits.exchanges_per_address_per_minute`), counted with rate-limiter-flexible
 * so that on Redis every broker shares the counters.
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { SlowDown, TemporarilyUnavailable } from '../http/errors.js';
import type { RedisClient } from '../store/redis.js';

export type LimitedBy = 'subject' | 'address';

export interface RateLimit {
  /** Resolves when allowed; throws SlowDown (429) over the limit, TemporarilyUnavailable when the counters cannot be reached. */
  consume(key: string): Promise<void>;
}

export class FlexibleRateLimit implements RateLimit {
  constructor(
    private readonly limiter: RateLimiterAbstract,
    private readonly by: LimitedBy,
  ) {}

  async consume(key: string): Promise<void> {
    try {
      await this.limiter.consume(key, 1);
    } catch (res) {
      if (res instanceof RateLimiterRes) throw new SlowDown(this.by, res.msBeforeNext / 1000);
      // The counters cannot be reached: fail closed rather than let requests through unmetered.
      throw new TemporarilyUnavailable(`rate limiter: ${(res as Error).message}`);
    }
  }
}

/** Lets everything through (a limit of 0 turns a limit off). */
export const unlimited: RateLimit = { consume: async () => undefined };

/** A per-minute limit kept in this process, or on Redis (shared by every broker) when `redis` is given. */
export function perMinuteLimit(by: LimitedBy, perMinute: number, redis?: RedisClient): RateLimit {
  if (perMinute === 0) return unlimited;
  const opts = { keyPrefix: `mintgate:rl:${by}`, points: perMinute, duration: 60 };
  // rejectIfRedisNotReady: fail at once rather than wait on a dead connection.
  const limiter = redis ? new RateLimiterRedis({ ...opts, storeClient: redis, rejectIfRedisNotReady: true }) : new RateLimiterMemory(opts);
  return new FlexibleRateLimit(limiter, by);
}
