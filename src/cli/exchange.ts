/** `mintgate exchange`: RFC 8693 from a shell or CI step; prints the token (or, --json, the response). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDuration } from '../config/duration.js';
import { GRANT_TYPE_TOKEN_EXCHANGE } from '../exchange/token_exchange.js';
import { callBroker, CliFailure } from './http_client.js';
import { UsageError } from './usage.js';

const TOKEN_TYPE_PREFIX = 'urn:ietf:params:oauth:token-type:';

export function registerExchange(program: Command): void {
  program
    .command('exchange')
    .description('exchange an identity token (CI OIDC token, service-account token, mintgate token) for a job token')
    .requiredOption('--broker <url>', 'the broker, e.g. http://127.0.0.1:8080')
    .requiredOption('--subject-token <file>', 'file holding the subject token, or - for standard input')
    .option('--subject-token-type <type>', 'id_token, jwt, access_token (to narrow a mintgate token) or a full URN', 'id_token')
    .requiredOption('--audience <audience>', 'the audience the job token is for')
    .option('--scope <scopes>', 'space-separated scopes (default: all the rule grants)')
    .option('--ttl <duration>', 'requested lifetime, e.g. 5m (clamped by the broker)')
    .option('--json', 'print the whole token response as JSON')
    .action(async (opts: { broker: string; subjectToken: string; subjectTokenType: string; audience: string; scope?: string; ttl?: string; json?: boolean }) => {
      const subjectToken = readSubjectToken(opts.subjectToken);
      const form: Record<string, string> = {
        grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
        subject_token: subjectToken,
        subject_token_type: opts.subjectTokenType.startsWith('urn:') ? opts.subjectTokenType : TOKEN_TYPE_PREFIX + opts.subjectTokenType,
        audience: opts.audience,
      };
      if (opts.scope) form.scope = opts.scope;
      if (opts.ttl) {
        try {
          form.expires_in = String(parseDuration(opts.ttl));
        } catch (err) {
          throw new UsageError(`--ttl: ${(err as Error).message}`);
        }
      }
      const response = (await callBroker(opts.broker, 'oauth2/token', { method: 'POST', form })) as { access_token?: string };
      if (typeof response?.access_token !== 'string') throw new CliFailure('the broker answered without an access_token');
      process.stdout.write(opts.json ? `${JSON.stringify(response, null, 2)}\n` : `${response.access_token}\n`);
    });
}

function readSubjectToken(source: string): string {
  let text: string;
  try {
    text = readFileSync(source === '-' ? 0 : source, 'utf8');
  } catch (err) {
    throw new UsageError(`--subject-token: cannot read ${source === '-' ? 'standard input' : source} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const token = text.trim();
  if (!token) throw new UsageError('--subject-token: the token is empty');
  return token;
}
