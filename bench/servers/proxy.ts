/**
 * One mintgate proxy under test, in its own process: `startProxy` with the config the CLI
 * (`mintgate proxy --config F`) would build from the same YAML, its default logger (at `warn`,
 * so a feed or spool problem during a run shows) and default audit spool, metrics and feed
 * follower. It reports ready only once `/_mintgate/readyz` would say so (the broker's keys
 * loaded and the revocation feed connected).
 *
 * Input, as JSON in `BENCH_PROXY_SPEC` (see {@link ProxySpec}); the proxy's credential at the
 * broker comes from `MINTGATE_PROXY_TOKEN`, as for the CLI.
 */
import { serveChild } from '../support/child.js';
import { benchProxyConfig, type ProxySpec } from '../support/proxy_config.js';
import { shipped } from '../support/shipped.js';

const { buildProxyConfig } = await shipped<typeof import('../../src/config/proxy.js')>('config/proxy.js');
const { startProxy } = await shipped<typeof import('../../src/proxy/proxy.js')>('proxy/proxy.js');

/** How long the proxy may take to load the broker's keys and connect its revocation feed. */
const READY_MS = 20_000;

await serveChild(async () => {
  const spec = JSON.parse(process.env.BENCH_PROXY_SPEC ?? '{}') as ProxySpec;
  const config = buildProxyConfig(benchProxyConfig(spec), {
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
    host: '127.0.0.1',
    port: 0,
    source: 'bench proxy config',
  });
  const proxy = await startProxy(config);
  const deadline = Date.now() + READY_MS;
  while (!proxy.ready()) {
    if (Date.now() > deadline) {
      await proxy.close();
      throw new Error(`the proxy was not ready within ${READY_MS / 1000} s (broker keys or revocation feed)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { info: { url: proxy.url }, close: () => proxy.close() };
});
