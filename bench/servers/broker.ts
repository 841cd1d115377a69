/**
 * The broker under load, in its own process (bench/support/child.ts): `startBroker` as the CLI
 * runs it, with the memory store, an in-memory keystore (nothing written under keys/), the
 * default logger at `silent` and the default audit sink, metrics and key-rotation timer.
 *
 * Input, as JSON in `BENCH_BROKER_SPEC`: `{ trust: [...] }` (the `trust` section of
 * mintgate.yaml). The rate limits per subject and per address are set out of reach (every
 * request of the run has the same subject and address, and the limits are not what is being
 * measured) but not off, so their counters are still paid for.
 */
import { buildBrokerConfig } from '../../src/config/broker.js';
import { InMemoryKeystoreRepository } from '../../src/keys/keystore.js';
import { startBroker } from '../../src/main.js';
import { freePort } from '../../test/support/ports.js';
import { serveChild } from '../support/child.js';

interface BrokerSpec {
  trust: unknown[];
}

await serveChild(async () => {
  const spec = JSON.parse(process.env.BENCH_BROKER_SPEC ?? '{}') as BrokerSpec;
  const port = await freePort();
  const config = buildBrokerConfig(
    {
      issuer: `http://127.0.0.1:${port}`,
      // Counted (the limiters run, as in production) but never reached.
      limits: { exchanges_per_subject_per_minute: 1_000_000_000, exchanges_per_address_per_minute: 1_000_000_000 },
      trust: spec.trust,
    },
    { env: { LOG_LEVEL: 'silent' }, host: '127.0.0.1', port, source: 'bench broker config' },
  );
  const broker = await startBroker(config, { keystore: new InMemoryKeystoreRepository() });
  return { info: { url: broker.url }, close: () => broker.close() };
});
