/**
 * Rows "peer: oidc-provider client_credentials": the same load against a mature OAuth server
 * (oidc-provider v9 on Koa, bench/servers/oidc_provider.ts) doing the cheapest token request
 * it knows, the client credentials grant with `client_secret_basic`. It verifies no assertion.
 *
 * - the peer row proper: opaque access tokens (oidc-provider's default: a random id, stored
 *   through its adapter, here an in-memory Map), so no signature either;
 * - "(JWT RS256)": with a resource indicator, an RFC 9068 JWT access token signed RS256, so it
 *   pays for one RSA signature per request. Shown for context; no target refers to it.
 *
 * Each variant gets a fresh process, so the first run's stored tokens do not weigh on the second.
 */
import { startChild } from '../support/child.js';
import { loadProblems, runLoad, warmUp } from '../support/load.js';
import type { BenchContext, MeasuredRow } from '../support/types.js';

export const PEER_ROW_NAME = 'peer: oidc-provider client_credentials';
export const PEER_JWT_ROW_NAME = 'peer: oidc-provider client_credentials (JWT RS256)';

interface ProviderInfo {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  /** `resource` value that makes the token a JWT with `aud` "mintgate". */
  jwtResource: string;
}

type Variant = 'opaque' | 'jwt';

export async function measure(ctx: BenchContext): Promise<MeasuredRow[]> {
  return [await measureVariant(ctx, 'opaque'), await measureVariant(ctx, 'jwt')];
}

async function measureVariant(ctx: BenchContext, variant: Variant): Promise<MeasuredRow> {
  const op = await startChild<ProviderInfo>('servers/oidc_provider.ts', {
    ...(ctx.cpuProfile ? { profileName: `oidc-provider-${variant}` } : {}),
  });
  try {
    const { tokenEndpoint, clientId, clientSecret, jwtResource } = op.info;
    // RFC 6749 2.3.1: id and secret are form-encoded before base64.
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
    const headers = { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' };
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (variant === 'jwt') form.set('resource', jwtResource);
    const body = form.toString();
    await sanityCheck(tokenEndpoint, headers, body, variant);

    const name = variant === 'opaque' ? PEER_ROW_NAME : PEER_JWT_ROW_NAME;
    ctx.log(`${name}: warming up, then ${ctx.durationSeconds} s`);
    const warm = await warmUp({ url: tokenEndpoint, headers, body, connections: ctx.connections }, { minSeconds: ctx.warmupSeconds, maxSeconds: ctx.warmupSeconds * 3 });
    await op.startProfile();
    const run = await runLoad({ url: tokenEndpoint, headers, body, connections: ctx.connections, seconds: ctx.durationSeconds });
    const profile = await op.stopProfile();
    if (profile) ctx.log(`${name}: CPU profile of the timed run: ${profile}`);
    return {
      name,
      value: run.rate,
      unit: 'req/s',
      p50_ms: run.p50_ms,
      p99_ms: run.p99_ms,
      note: `oidc-provider in a child process; client_credentials, client_secret_basic, ${
        variant === 'opaque' ? 'opaque access token (stored in a Map, nothing signed)' : 'JWT access token signed RS256'
      }; verifies no assertion; ${ctx.connections} connections${profile ? '; CPU-PROFILED (slower)' : ''}`,
      details: {
        token_format: variant,
        ok: run.ok,
        seconds: Math.round(run.seconds * 100) / 100,
        per_second: run.perSecond,
        warm_up_steps: warm.steps,
        connections: ctx.connections,
        p90_ms: Math.round(run.p90_ms * 1000) / 1000,
        max_ms: Math.round(run.max_ms * 1000) / 1000,
        status: run.status,
        errors: run.errors,
        ...(profile ? { cpu_profile: profile } : {}),
      },
      problems: loadProblems('timed run', run),
    };
  } finally {
    await op.stop();
  }
}

/** One token request by hand: a 200 with a Bearer token of the expected format. */
async function sanityCheck(url: string, headers: Record<string, string>, body: string, variant: Variant): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`oidc-provider sanity request answered ${res.status}: ${text.slice(0, 300)}`);
  const json = JSON.parse(text) as { access_token?: string; token_type?: string };
  const parts = json.access_token?.split('.').length ?? 0;
  if (json.token_type !== 'Bearer' || parts !== (variant === 'jwt' ? 3 : 1)) {
    throw new Error(`oidc-provider sanity request: expected a ${variant} Bearer token, got ${text.slice(0, 200)}`);
  }
}
