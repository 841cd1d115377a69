/** The proxy's Prometheus metrics (prom-client), one registry per proxy so tests can run several. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ProxyMetrics {
  readonly registry = new Registry();
  /** Calls by route and decision (allowed, or why not). */
  readonly calls = new Counter({
    name: 'mintgate_proxy_calls_total',
    help: 'Proxied calls by route and decision (allowed, no_route, invalid_token, blocked, ...).',
    labelNames: ['route', 'decision'] as const,
    registers: [this.registry],
  });
  /** Time the proxy itself spent before the upstream answered, and in total. */
  readonly callSeconds = new Histogram({
    name: 'mintgate_proxy_call_duration_seconds',
    help: 'Time to answer a call, in seconds (upstream included).',
    labelNames: ['decision'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
    registers: [this.registry],
  });
  readonly masked = new Counter({
    name: 'mintgate_proxy_masked_total',
    help: 'Values masked in responses, by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly feedConnected = new Gauge({ name: 'mintgate_proxy_feed_connected', help: '1 while the revocation feed is connected.', registers: [this.registry] });
  readonly feedSilenceSeconds = new Gauge({ name: 'mintgate_proxy_feed_silence_seconds', help: 'Seconds since the revocation feed was last heard from.', registers: [this.registry] });
  readonly revocationsKnown = new Gauge({ name: 'mintgate_proxy_revocations', help: 'Live revocations known to this proxy.', registers: [this.registry] });
  readonly spoolBacklog = new Gauge({ name: 'mintgate_proxy_audit_backlog', help: 'Call records spooled and not yet accepted by the broker.', registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'mintgate_proxy_' });
  }
}
