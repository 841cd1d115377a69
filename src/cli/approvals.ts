/** `mintgate approvals list|approve|deny`: human approval of requests the proxy holds. */
import { Option, type Command } from 'commander';
import type { ApprovalJson } from '../broker/admin_approvals.js';
import { adminCredential, callBroker } from './http_client.js';

const STATUSES = ['pending', 'approved', 'denied', 'expired'];

function printTable(approvals: ApprovalJson[]): void {
  if (approvals.length === 0) {
    process.stdout.write('no approvals\n');
    return;
  }
  const rows = [
    ['ID', 'STATUS', 'ROUTE', 'REQUEST', 'MODEL', 'SUBJECT', 'JOB', 'EXPIRES', 'DECIDED BY'],
    ...approvals.map((a) => [a.id, a.status, a.route, `${a.method} ${a.path}`, a.model ?? '-', a.sub, a.job_id, a.expires_at, a.decided_by ?? '-']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}

export function registerApprovals(program: Command): void {
  const approvals = program.command('approvals').description('requests held by the proxy for human approval: list, approve, deny');
  approvals
    .command('list')
    .description('the newest approvals first (pending ones past their expiry show as expired)')
    .requiredOption('--broker <url>', 'the broker, e.g. http://127.0.0.1:8080')
    .addOption(new Option('--status <status>', 'only approvals with this status').choices(STATUSES))
    .option('--json', 'print the JSON the broker answers')
    .action(async (opts: { broker: string; status?: string; json?: boolean }) => {
      const query = opts.status ? `?status=${encodeURIComponent(opts.status)}` : '';
      const res = (await callBroker(opts.broker, `admin/approvals${query}`, { method: 'GET', bearer: adminCredential() })) as { approvals: ApprovalJson[] };
      if (opts.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
      else printTable(res.approvals);
    });
  for (const [name, verb, past] of [['approve', 'let the held request through', 'approved'], ['deny', 'refuse the held request', 'denied']] as const) {
    approvals
      .command(`${name} <id>`)
      .description(`${verb} (the proxy learns it within a second)`)
      .requiredOption('--broker <url>', 'the broker, e.g. http://127.0.0.1:8080')
      .option('--json', 'print the decided approval as JSON')
      .action(async (id: string, opts: { broker: string; json?: boolean }) => {
        const approval = (await callBroker(opts.broker, `admin/approvals/${encodeURIComponent(id)}/${name}`, { method: 'POST', bearer: adminCredential() })) as ApprovalJson;
        process.stdout.write(
          opts.json ? `${JSON.stringify(approval, null, 2)}\n` : `${past} ${approval.id}: ${approval.method} ${approval.path} (route ${approval.route}, ${approval.sub}, job ${approval.job_id})\n`,
        );
      });
  }
}
