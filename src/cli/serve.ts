/** `mintgate serve`: the broker. Without a config file, dev mode (CONTRACT section 6). */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildBrokerConfig, loadBrokerConfigFile, type BrokerConfig } from '../config/broker.js';
import { DEV_AUDIENCE } from '../config/dev.js';
import { devConfig } from '../config/dev.js';
import { startBroker } from '../main.js';
import { UsageError } from './usage.js';

/** Where dev mode leaves its admin secret, under the (git-ignored) keys directory. */
const DEV_ADMIN_TOKEN_FILE = 'dev-admin-token';

interface ServeOptions {
  config?: string;
  host?: string;
  port?: string;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the broker (token service); without a config file, dev mode')
    .option('--config <file>', 'broker config (default: $MINTGATE_CONFIG, else ./mintgate.yaml, else dev mode)')
    .option('--host <host>', 'address to listen on (default: $HOST or 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default: $PORT or 8080)')
    .action(async (opts: ServeOptions) => {
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new UsageError(`--port: "${opts.port}" is not a port`);
      const path = opts.config ?? (process.env.MINTGATE_CONFIG || undefined) ?? (existsSync('mintgate.yaml') ? 'mintgate.yaml' : undefined);
      const overrides = { ...(opts.host === undefined ? {} : { host: opts.host }), ...(port === undefined ? {} : { port }) };
      const config = path ? loadBrokerConfigFile(path, overrides) : devModeConfig(overrides);
      const broker = await startBroker(config);
      if (config.dev) {
        // The walkthrough in README.md reads the secret from here, so it works when pasted.
        await writeFile(join(config.keys.dir, DEV_ADMIN_TOKEN_FILE), config.adminToken ?? '', { mode: 0o600 });
        process.stdout.write(quickstart(broker.url, config));
      }
      else broker.context.log.info({ url: broker.url, issuer: config.issuer, store: config.store.url === 'memory' ? 'memory' : 'redis' }, 'mintgate broker listening');
      const stop = (signal: string) => {
        broker.context.log.info({ signal }, 'shutting down');
        broker.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}

function devModeConfig(overrides: { host?: string; port?: number }): BrokerConfig {
  const host = overrides.host ?? process.env.HOST ?? '127.0.0.1';
  const port = overrides.port ?? (process.env.PORT ? Number(process.env.PORT) : 8080);
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  // Dev mode prints its admin secret so the walkthrough can use it; a random one each start.
  const env = { ...process.env, MINTGATE_ADMIN_TOKEN: process.env.MINTGATE_ADMIN_TOKEN || `dev-${randomBytes(18).toString('base64url')}` };
  return buildBrokerConfig(devConfig(issuer), { env, host, port, dev: true, source: 'dev config' });
}

function quickstart(url: string, config: BrokerConfig): string {
  return `
mintgate broker (DEV MODE: in-memory store, dev issuer at ${url}/dev/oidc) listening on ${url}
Signing keys: ${config.keys.dir}/ (git-ignored). Never run dev mode in production.

Dev admin secret (also in ${join(config.keys.dir, DEV_ADMIN_TOKEN_FILE)}):
  export MINTGATE_ADMIN_TOKEN=${config.adminToken}

Quickstart, in another terminal in this directory:
  # 1. get a GitHub Actions-shaped assertion from the dev issuer
  ASSERTION=$(curl -s -X POST ${url}/dev/oidc/token -H 'content-type: application/json' \\
    -d '{"repository":"acme/models","run_id":"42"}' | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).token')
  # 2. exchange it for a job token (RFC 8693): 5 minutes, one audience, exact scopes
  TOKEN=$(echo "$ASSERTION" | npx mintgate exchange --broker ${url} --subject-token - \\
    --audience ${DEV_AUDIENCE} --scope "inference:invoke model:llama-3-8b")
  # 3. look inside it (introspection needs the admin secret above)
  curl -s ${url}/oauth2/introspect -H "authorization: Bearer $MINTGATE_ADMIN_TOKEN" --data-urlencode "token=$TOKEN"; echo
  # 4. call a model through the proxy: start the demo model server and the proxy in two more
  #    terminals (node dist/dev/demo_model_main.js, and
  #    MINTGATE_PROXY_TOKEN=$MINTGATE_ADMIN_TOKEN npx mintgate proxy --config examples/dev/proxy.yaml), then:
  #    curl -s http://127.0.0.1:8081/v1/chat/completions -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
  #      -d '{"model":"llama-3-8b","messages":[{"role":"user","content":"hi"}]}'      (the answer comes back masked)
  # 5. revoke the whole job: introspection says "active": false, and the proxy answers 401
  npx mintgate revoke --broker ${url} --job 42-1 --reason "job finished"
  curl -s ${url}/oauth2/introspect -H "authorization: Bearer $MINTGATE_ADMIN_TOKEN" --data-urlencode "token=$TOKEN"; echo

All of this, and more, in one go: npm run demo
`;
}
