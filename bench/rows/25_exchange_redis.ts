/**
 * Row "exchange (redis store)": the memory row's measurement (bench/support/exchange.ts) with
 * the broker keeping all its state in Redis (replay claims, token records, rate-limit counters,
 * the keystore encrypted under a throwaway KEK), as a deployment of several brokers does.
 *
 * The Redis is a private redis-server started for this row on a free port of 127.0.0.1
 * (test/support/redis.ts: persistence off, `--save "" --appendonly no`), never the shared one on
 * 6379, and stopped at the end. It runs on the same machine, so it competes with the broker and
 * the load generator for the cores; `details.redis` has its CPU time and command count over the
 * timed run (read with INFO on a connection of our own).
 *
 * Target (CONTRACT quality bar, "on Redis >= 0.5x"): at least half the ceiling. The ratio to the
 * memory row is reported for context (what the Redis round trips cost); nothing is held to it.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { startRedis } from '../../test/support/redis.js';
import { measureExchange } from '../support/exchange.js';
import type { BenchContext, MeasuredRow } from '../support/types.js';
import { ROW_NAME as CEILING } from './10_ceiling.js';
import { ROW_NAME as MEMORY } from './20_exchange_memory.js';

export const ROW_NAME = 'exchange (redis store)';

export async function measure(ctx: BenchContext): Promise<MeasuredRow[]> {
  const redis = await startRedis();
  if (!redis) throw new Error('redis-server is not on PATH: the redis row needs one');
  // A second connection, ours, for the server's own counters (INFO), outside the timed requests.
  const probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await probe.connect();
    let before = new Map<string, string>();
    const row = await measureExchange(ctx, {
      name: ROW_NAME,
      tag: 'redis',
      store: { url: redis.url, kek: randomBytes(32).toString('base64') },
      storeNote: 'redis store (private redis-server on 127.0.0.1, persistence off: appendonly no, save "")',
      targets: [
        { baseline: CEILING, target: 0.5 },
        { baseline: MEMORY },
      ],
      timed: {
        async before() {
          before = parseInfo(await probe.info());
        },
        async after(ok) {
          const after = parseInfo(await probe.info());
          const delta = (field: string) => Number(after.get(field)) - Number(before.get(field));
          // Redis counts the commands a Lua script calls as well as the EVALSHA itself, so this is
          // the work asked of Redis per exchange, not its round trips. Less our first INFO.
          const commands = delta('total_commands_processed') - 1;
          const cpuSeconds = delta('used_cpu_user') + delta('used_cpu_sys');
          return {
            redis: {
              version: after.get('redis_version'),
              persistence: 'off (appendonly no, save "")',
              commands_per_exchange_incl_lua: ok > 0 ? round(commands / ok, 2) : null,
              cpu_seconds_timed_run: round(cpuSeconds, 2),
              used_memory_mb_after: round(Number(after.get('used_memory')) / 2 ** 20, 1),
              keys_after: Number(/keys=(\d+)/.exec(after.get('db0') ?? '')?.[1] ?? 0),
            },
          };
        },
      },
    });
    return [row];
  } finally {
    probe.disconnect();
    await redis.stop();
  }
}

/** `field:value` lines of INFO. */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields.set(line.slice(0, at), line.slice(at + 1));
  }
  return fields;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
