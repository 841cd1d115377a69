/**
 * The broker under load, in its own process (bench/support/child.ts): `startBroker` as the CLI
 * runs it, with the default logger at `silent` and the default audit sink, metrics and
 * key-rotation timer.
 *
 * Input, as JSON in `BENCH_BROKER_SPEC` (see {@link BrokerSpec}): the `trust` section of
 * mintgate.yaml and, optionally, a Redis store. Without `store` the broker runs on the memory
 * store with an in-memory keystore (nothing written under keys/). With `store` it keeps all its
 * state in Redis, as a deployment of several brokers does: `store.url` is what `REDIS_URL`
 * would be and `store.kek` what `MINTGATE_KEK` would be, so replay claims, token records, rate
 * limit counters and the (encrypted) keystore all live there.
 *
 * With `adminToken` the bootstrap admin secret (`MINTGATE_ADMIN_TOKEN`) is set: the proxy rows use
 * it as the proxies' credential (revocation stream, audit shipping) and to revoke.
 *
 * The rate limits per subject and per address are set out of reach (every request of the run
 * has the same subject and address, and the limits are not what is being measured) but not
 * off, so their counters are still paid for.
 */
import { freePort } from '../../test/support/ports.js';
import { serveChild } from '../support/child.js';
import { shipped } from '../support/shipped.js';

const { buildBrokerConfig } = await shipped<typeof import('../../src/config/broker.js')>('config/broker.js');
const { InMemoryKeystoreRepository } = await shipped<typeof import('../../src/keys/keystore.js')>('keys/keystore.js');
const { startBroker } = await shipped<typeof import('../../src/main.js')>('main.js');

export interface BrokerSpec {
  /** The `trust` section of mintgate.yaml. */
  trust: unknown[];
  /** A Redis store instead of the memory store: its URL and the keystore KEK (base64, 32 bytes). */
  store?: { url: string; kek: string };
  /** The bootstrap admin secret (`MINTGATE_ADMIN_TOKEN`); without it `/admin/*` takes no secret. */
  adminToken?: string;
}

await serveChild(async () => {
  const spec = JSON.parse(process.env.BENCH_BROKER_SPEC ?? '{}') as BrokerSpec;
  const port = await freePort();
  const env: Record<string, string> = { LOG_LEVEL: 'silent' };
  if (spec.store) {
    env.REDIS_URL = spec.store.url;
    env.MINTGATE_KEK = spec.store.kek;
  }
  if (spec.adminToken) env.MINTGATE_ADMIN_TOKEN = spec.adminToken;
  const config = buildBrokerConfig(
    {
      issuer: `http://127.0.0.1:${port}`,
      // Counted (the limiters run, as in production) but never reached.
      limits: { exchanges_per_subject_per_minute: 1_000_000_000, exchanges_per_address_per_minute: 1_000_000_000 },
      trust: spec.trust,
    },
    { env, host: '127.0.0.1', port, source: 'bench broker config' },
  );
  // On Redis the keystore is Redis's own (encrypted under the KEK), as in production.
  const broker = await startBroker(config, spec.store ? {} : { keystore: new InMemoryKeystoreRepository() });
  return { info: { url: broker.url }, close: () => broker.close() };
});
