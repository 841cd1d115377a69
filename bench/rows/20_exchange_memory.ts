/**
 * Row "exchange (memory store)": RFC 8693 exchanges per second through the whole broker, with
 * the broker in its own process on the memory store and autocannon here (the measurement is
 * bench/support/exchange.ts, shared with the Redis row).
 */
import { measureExchange } from '../support/exchange.js';
import type { BenchContext, MeasuredRow } from '../support/types.js';
import { ROW_NAME as CEILING } from './10_ceiling.js';
import { PEER_ROW_NAME as PEER } from './30_peer_oidc_provider.js';

export const ROW_NAME = 'exchange (memory store)';

export async function measure(ctx: BenchContext): Promise<MeasuredRow[]> {
  return [
    await measureExchange(ctx, {
      name: ROW_NAME,
      tag: 'memory',
      storeNote: 'memory store',
      targets: [
        { baseline: CEILING, target: 0.6 },
        { baseline: PEER, target: 1 },
      ],
    }),
  ];
}
