/** `mintgate keys list|rotate`. */
import type { Command } from 'commander';
import { adminCredential, callBroker } from './http_client.js';

interface KeyRow {
  kid: string;
  alg: string;
  state: string;
  activates_at: string;
  retires_at?: string;
  expires_at?: string;
}

function printKeys(keys: KeyRow[], json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ keys }, null, 2)}\n`);
    return;
  }
  const rows = [['KID', 'ALG', 'STATE', 'SIGNS FROM', 'SIGNS UNTIL', 'PUBLISHED UNTIL'], ...keys.map((k) => [k.kid, k.alg, k.state, k.activates_at, k.retires_at ?? '-', k.expires_at ?? '-'])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('signing keys: list their states, rotate');
  keys
    .command('list')
    .description('the signing keys and their states (next, current, retiring)')
    .requiredOption('--broker <url>', 'the broker')
    .option('--json', 'print JSON')
    .action(async (opts: { broker: string; json?: boolean }) => {
      const res = (await callBroker(opts.broker, 'admin/keys', { method: 'GET', bearer: adminCredential() })) as { keys: KeyRow[] };
      printKeys(res.keys, opts.json);
    });
  keys
    .command('rotate')
    .description('publish a new key now; it starts signing after keys.publish_ahead')
    .requiredOption('--broker <url>', 'the broker')
    .option('--json', 'print JSON')
    .action(async (opts: { broker: string; json?: boolean }) => {
      const res = (await callBroker(opts.broker, 'admin/keys/rotate', { method: 'POST', bearer: adminCredential() })) as { keys: KeyRow[] };
      printKeys(res.keys, opts.json);
    });
}
