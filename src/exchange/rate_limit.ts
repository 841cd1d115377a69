/**
 * Exchanges per subject per minute (`limits.exchanges_per_subject_per_minute`), counted with
 * rate-limiter-flexible so the Redis store can share the counters across brokers.
 */
import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { SlowDown, TemporarilyUnavailable } from '../http/errors.js';

export interface SubjectLimiter {
  /** Resolves when allowed; throws SlowDown (429) when over the limit. */
  consume(subject: string): Promise<void>;
}

export class FlexibleSubjectLimiter implements SubjectLimiter {
  constructor(private readonly limiter: RateLimiterAbstract) {}

  async consume(subject: string): Promise<void> {
    try {
      await this.limiter.consume(subject, 1);
    } catch (res) {
      if (res instanceof RateLimiterRes) throw new SlowDown(res.msBeforeNext / 1000, `subject over its rate limit`);
      // The counter store failed: fail closed rather than let a subject through unmetered.
      throw new TemporarilyUnavailable(`rate limiter: ${(res as Error).message}`);
    }
  }
}

export function memorySubjectLimiter(perMinute: number): SubjectLimiter {
  return new FlexibleSubjectLimiter(new RateLimiterMemory({ keyPrefix: 'mintgate:rl:sub', points: perMinute, duration: 60 }));
}
