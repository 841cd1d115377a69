/** `mintgate proxy --config F`: the companion proxy (CONTRACT section 7). */
import type { Command } from 'commander';
import { loadProxyConfigFile } from '../config/proxy.js';
import { startProxy } from '../proxy/proxy.js';
import { UsageError } from './usage.js';

interface ProxyOptions {
  config: string;
  host?: string;
  port?: string;
}

export function registerProxy(program: Command): void {
  program
    .command('proxy')
    .description('run the companion proxy in front of a model server')
    .requiredOption('--config <file>', 'proxy config (YAML, CONTRACT section 7)')
    .option('--host <host>', 'address to listen on (default: $HOST or 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default: $PORT or 8081)')
    .action(async (opts: ProxyOptions) => {
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError(`--port: "${opts.port}" is not a port`);
      const config = loadProxyConfigFile(opts.config, { ...(opts.host === undefined ? {} : { host: opts.host }), ...(port === undefined ? {} : { port }) });
      const proxy = await startProxy(config);
      const stop = (): void => {
        proxy.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
