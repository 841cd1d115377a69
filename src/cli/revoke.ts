/** `mintgate revoke`: revoke by jti, job or subject through `/admin/revocations`. */
import type { Command } from 'commander';
import { adminCredential, callBroker } from './http_client.js';
import { UsageError } from './usage.js';

export function registerRevoke(program: Command): void {
  program
    .command('revoke')
    .description('revoke a token (--jti), every token of a job (--job) or of a subject (--sub)')
    .requiredOption('--broker <url>', 'the broker, e.g. http://127.0.0.1:8080')
    .option('--jti <jti>', 'one token, by its id')
    .option('--job <job>', 'every token of this job, and new exchanges for it')
    .option('--sub <subject>', 'every token of this subject issued until now')
    .option('--reason <reason>', 'why (kept with the revocation)')
    .option('--json', 'print the revocation as JSON')
    .action(async (opts: { broker: string; jti?: string; job?: string; sub?: string; reason?: string; json?: boolean }) => {
      const targets = (['jti', 'job', 'sub'] as const).filter((k) => opts[k] !== undefined);
      if (targets.length !== 1) throw new UsageError('give exactly one of --jti, --job, --sub');
      const kind = targets[0]!;
      const body = { [kind]: opts[kind], ...(opts.reason ? { reason: opts.reason } : {}) };
      const revocation = (await callBroker(opts.broker, 'admin/revocations', { method: 'POST', json: body, bearer: adminCredential() })) as Record<string, string>;
      process.stdout.write(opts.json ? `${JSON.stringify(revocation, null, 2)}\n` : `revoked ${kind} ${opts[kind]} (until ${revocation.until}, id ${revocation.id})\n`);
    });
}
