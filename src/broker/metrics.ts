/** Prometheus metrics (prom-client), one registry per broker so tests can run several. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class BrokerMetrics {
  readonly registry = new Registry();
  /** Exchanges by outcome: `issued`, or the protocol error code that refused them. */
  readonly exchanges = new Counter({
    name: 'mintgate_exchanges_total',
    help: 'Token exchanges by outcome (issued, or the OAuth error code).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly exchangeSeconds = new Histogram({
    name: 'mintgate_exchange_duration_seconds',
    help: 'Time to answer a token exchange, in seconds.',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly revocations = new Counter({
    name: 'mintgate_revocations_total',
    help: 'Revocations by kind (jti, job, sub).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'mintgate_' });
  }
}
