#!/usr/bin/env node
/** The `mintgate` command. Exit status: 0 success, 1 the server said no or a check failed, 2 usage. */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/broker.js';
import { registerApprovals } from './approvals.js';
import { registerExchange } from './exchange.js';
import { CliFailure } from './http_client.js';
import { registerKeys } from './keys.js';
import { registerProxy } from './proxy.js';
import { registerRevoke } from './revoke.js';
import { registerServe } from './serve.js';
import { UsageError } from './usage.js';

const program = new Command('mintgate')
  .description('short-lived, per-job tokens for CI jobs and inference containers')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError();
registerServe(program);
registerProxy(program);
registerExchange(program);
registerRevoke(program);
registerKeys(program);
registerApprovals(program);
for (const command of program.commands) command.exitOverride();

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof UsageError || err instanceof ConfigError) {
    process.stderr.write(`mintgate: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof CliFailure) {
    process.stderr.write(`mintgate: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`mintgate: ${(err as Error).message ?? err}\n`);
  process.exit(1);
}
