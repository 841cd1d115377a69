/**
 * Row "exchange (memory store)": RFC 8693 exchanges per second through the whole broker
 * (express, form parsing, assertion checks, JWKS cache, RS256 verification, CEL rule, grant,
 * replay claim, record, ES256 mint, metrics), with the broker in its own process
 * (bench/servers/broker.ts) and autocannon here.
 *
 * The broker accepts each assertion once, so every request carries its own pre-signed GitHub
 * token. The pool is topped up before each warm-up step and then, sized from the warmed-up
 * rate with headroom, for the timed run. Should the timed run still use the pool up, it ends
 * early and its rate is taken over the time it ran (`details.ended_early`).
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startLocalIssuer } from '../../test/support/local_issuer.js';
import { startChild } from '../support/child.js';
import { AUDIENCE, assertFormSafe, exchangeForm, exchangeFormParts, githubTrust, signAssertions } from '../support/github.js';
import { loadProblems, runLoad, warmUp, type LoadResult, type WarmUpResult } from '../support/load.js';
import type { BenchContext, MeasuredRow } from '../support/types.js';
import { ROW_NAME as CEILING } from './10_ceiling.js';
import { PEER_ROW_NAME as PEER } from './30_peer_oidc_provider.js';

export const ROW_NAME = 'exchange (memory store)';

/** Assertions at least in the pool before each one-second warm-up step. */
const STEP_POOL_MIN = 4000;
/** Pools are sized at the best warm-up rate times this (times the seconds they must last). */
const HEADROOM = 1.5;

/** A pool of single-use request bodies. */
class AssertionPool {
  private readonly tokens: string[] = [];
  private next = 0;
  private readonly before: string;
  private readonly after: string;

  constructor() {
    [this.before, this.after] = exchangeFormParts();
  }

  add(tokens: string[]): void {
    for (const t of tokens) {
      assertFormSafe(t);
      this.tokens.push(t);
    }
  }

  get remaining(): number {
    return this.tokens.length - this.next;
  }

  take(): string | undefined {
    return this.next < this.tokens.length ? this.tokens[this.next++] : undefined;
  }

  nextBody = (): Buffer | undefined => {
    const token = this.take();
    return token === undefined ? undefined : Buffer.from(`${this.before}${token}${this.after}`);
  };
}

export async function measure(ctx: BenchContext): Promise<MeasuredRow[]> {
  const idp = await startLocalIssuer();
  const broker = await startChild<{ url: string }>('servers/broker.ts', {
    env: { BENCH_BROKER_SPEC: JSON.stringify({ trust: [githubTrust(idp.issuer)] }) },
    ...(ctx.cpuProfile ? { profileName: 'broker-exchange-memory' } : {}),
  });
  try {
    const tokenUrl = `${broker.info.url}/oauth2/token`;
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const pool = new AssertionPool();
    let signed = 0;
    let signSeconds = 0;
    const topUp = async (count: number) => {
      const more = Math.max(0, count - pool.remaining);
      if (more === 0) return;
      const batch = await signAssertions(idp, more);
      pool.add(batch.tokens);
      signed += more;
      signSeconds += more / batch.perSecond;
    };
    await topUp(2);
    ctx.log('exchange: checking the broker answers for real');
    await sanityCheck(broker.info.url, pool);

    ctx.log(`exchange: warming up (${ctx.warmupSeconds} s at least, until the rate settles)`);
    const warm = await warmUp(
      { url: tokenUrl, headers, nextBody: pool.nextBody, maxRequests: () => pool.remaining, connections: ctx.connections },
      {
        minSeconds: ctx.warmupSeconds,
        maxSeconds: ctx.warmupSeconds * 3,
        beforeStep: (bestRate) => topUp(Math.ceil(Math.max(bestRate * HEADROOM, STEP_POOL_MIN)) + ctx.connections),
      },
    );

    await topUp(Math.ceil(Math.max(warm.peak, 500) * ctx.durationSeconds * HEADROOM) + ctx.connections);
    const poolSize = pool.remaining;
    ctx.log(
      `exchange: warm at ${Math.round(warm.rate)}/s (steps ${warm.steps.join(' ')}); ${signed} assertions signed at ${Math.round(signed / signSeconds)}/s; ` +
        `${ctx.durationSeconds} s, ${ctx.connections} connections, ${poolSize} distinct assertions`,
    );
    await broker.startProfile();
    const run = await runLoad({
      url: tokenUrl,
      headers,
      nextBody: pool.nextBody,
      maxRequests: poolSize,
      connections: ctx.connections,
      seconds: ctx.durationSeconds,
    });
    const profile = await broker.stopProfile();
    if (profile) ctx.log(`exchange: CPU profile of the timed run: ${profile}`);
    return [exchangeRow(ctx, run, poolSize, warm, signed / signSeconds, profile)];
  } finally {
    await broker.stop();
    await idp.close();
  }
}

function exchangeRow(ctx: BenchContext, run: LoadResult, poolSize: number, warm: WarmUpResult, signRate: number, profile: string | undefined): MeasuredRow {
  const problems = loadProblems('timed run', run);
  // The pool ran out before the time did: the rate still holds, over a shorter window.
  const endedEarly = run.seconds < ctx.durationSeconds * 0.9 ? `pool of ${poolSize} used up after ${run.seconds.toFixed(1)} s` : undefined;
  return {
    name: ROW_NAME,
    value: run.rate,
    unit: 'req/s',
    p50_ms: run.p50_ms,
    p99_ms: run.p99_ms,
    note: `broker in a child process, memory store; POST /oauth2/token, GitHub RS256 assertion -> ES256 job token; ${ctx.connections} connections${profile ? '; CPU-PROFILED (slower)' : ''}`,
    details: {
      ok: run.ok,
      seconds: round(run.seconds, 2),
      per_second: run.perSecond,
      connections: ctx.connections,
      p90_ms: round(run.p90_ms, 3),
      max_ms: round(run.max_ms, 3),
      status: run.status,
      errors: run.errors,
      warm_up_steps: warm.steps,
      pool: poolSize,
      assertions_signed_per_s: Math.round(signRate),
      ...(endedEarly ? { ended_early: endedEarly } : {}),
      ...(profile ? { cpu_profile: profile } : {}),
    },
    problems,
    targets: [
      { baseline: CEILING, target: 0.6 },
      { baseline: PEER, target: 1 },
    ],
  };
}

/**
 * One exchange by hand before any load: a 200 with a job token that verifies against the
 * broker's JWKS, and a 400 for the same assertion again (so single use is on, and a pool of
 * distinct assertions is what the load needs).
 */
async function sanityCheck(brokerUrl: string, pool: AssertionPool): Promise<void> {
  const assertion = pool.take()!;
  const post = (body: string) =>
    fetch(`${brokerUrl}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  const res = await post(exchangeForm(assertion));
  const text = await res.text();
  if (res.status !== 200) throw new Error(`sanity exchange answered ${res.status}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text) as { access_token?: string; issued_token_type?: string };
  if (typeof body.access_token !== 'string') throw new Error('sanity exchange: no access_token');
  const jwks = createRemoteJWKSet(new URL(`${brokerUrl}/jwks.json`));
  const { protectedHeader } = await jwtVerify(body.access_token, jwks, { issuer: brokerUrl, audience: AUDIENCE, typ: 'at+jwt' });
  if (protectedHeader.alg !== 'ES256') throw new Error(`sanity exchange: job token signed ${protectedHeader.alg}, expected ES256`);
  const replay = await post(exchangeForm(assertion));
  await replay.text();
  if (replay.status !== 400) throw new Error(`replayed assertion answered ${replay.status}, expected 400`);
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
