/**
 * The exchange measurement every broker row makes ("exchange (memory store)", "exchange (redis
 * store)"): RFC 8693 exchanges per second through the whole broker (express, form parsing,
 * assertion checks, JWKS cache, RS256 verification, CEL rule, grant, replay claim, record,
 * ES256 mint, metrics), with the broker in its own process (bench/servers/broker.ts) and
 * autocannon here. A row says which store the broker keeps its state in; the rest is the same.
 *
 * The broker accepts each assertion once, so every request carries its own pre-signed GitHub
 * token. The pool is topped up before each warm-up step and then, sized from the warmed-up
 * rate with headroom, for the timed run. Should the timed run still use the pool up, it ends
 * early and its rate is taken over the time it ran (`details.ended_early`).
 *
 * Signing is most of an exchange row's wall time (RSA signatures, about 3,000/s on two cores),
 * so the exchange rows of a run share one issuer and one pool: what one row's headroom left
 * unsent goes to the next row's broker, which has never seen those assertions (each broker has
 * its own store). Assertions live 300 s, far longer than a run.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startLocalIssuer, type LocalIssuer } from '../../test/support/local_issuer.js';
import type { BrokerSpec } from '../servers/broker.js';
import { startChild } from './child.js';
import { AUDIENCE, assertFormSafe, exchangeForm, exchangeFormParts, githubTrust, signAssertions } from './github.js';
import { loadProblems, runLoad, warmUp } from './load.js';
import type { BenchContext, MeasuredRow, Target } from './types.js';

/** Assertions at least in the pool before each one-second warm-up step. */
const STEP_POOL_MIN = 4000;
/** Warm-up steps find at least the best rate so far times this in the pool. */
const STEP_HEADROOM = 1.5;
/** The timed run finds at least the best warm-up rate times this times its seconds. */
const TIMED_HEADROOM = 1.25;

export interface ExchangeRowOptions {
  /** The row's name. */
  name: string;
  /** Short tag for progress lines and CPU profile file names, e.g. `memory`. */
  tag: string;
  /** Where the broker keeps its state (default: the memory store). */
  store?: BrokerSpec['store'];
  /** What the note says about the store, e.g. `memory store`. */
  storeNote: string;
  targets: Target[];
  /**
   * Called right before and right after the timed run (not the warm-up); what `after` returns
   * goes into the row's `details` (e.g. the store's own counters over the timed run).
   */
  timed?: { before(): Promise<void>; after(ok: number): Promise<Record<string, unknown>> };
}

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
    // Forget what was sent already (a run goes through tens of thousands of assertions).
    this.tokens.splice(0, this.next);
    this.next = 0;
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

/** The issuer and assertion pool the exchange rows of one run share. */
interface AssertionSource {
  idp: LocalIssuer;
  pool: AssertionPool;
}

const sources = new WeakMap<BenchContext, Promise<AssertionSource>>();

/** This run's issuer and pool: started by the first exchange row, closed after the last row. */
function assertionSource(ctx: BenchContext): Promise<AssertionSource> {
  let source = sources.get(ctx);
  if (!source) {
    source = startLocalIssuer().then((idp) => {
      ctx.atEnd(() => idp.close());
      return { idp, pool: new AssertionPool() };
    });
    sources.set(ctx, source);
  }
  return source;
}

/** Starts a broker on `opts.store`, checks one exchange by hand, warms up, measures. */
export async function measureExchange(ctx: BenchContext, opts: ExchangeRowOptions): Promise<MeasuredRow> {
  const { idp, pool } = await assertionSource(ctx);
  const carriedOver = pool.remaining;
  const spec: BrokerSpec = { trust: [githubTrust(idp.issuer)], ...(opts.store ? { store: opts.store } : {}) };
  const broker = await startChild<{ url: string }>('servers/broker.ts', {
    env: { BENCH_BROKER_SPEC: JSON.stringify(spec) },
    ...(ctx.cpuProfile ? { profileName: `broker-exchange-${opts.tag}` } : {}),
  });
  try {
    const tokenUrl = `${broker.info.url}/oauth2/token`;
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
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
    ctx.log(`exchange (${opts.tag}): checking the broker answers for real`);
    await sanityCheck(broker.info.url, pool);

    ctx.log(`exchange (${opts.tag}): warming up (${ctx.warmupSeconds} s at least, until the rate settles)`);
    const warm = await warmUp(
      { url: tokenUrl, headers, nextBody: pool.nextBody, maxRequests: () => pool.remaining, connections: ctx.connections },
      {
        minSeconds: ctx.warmupSeconds,
        maxSeconds: ctx.warmupSeconds * 3,
        beforeStep: (bestRate) => topUp(Math.ceil(Math.max(bestRate * STEP_HEADROOM, STEP_POOL_MIN)) + ctx.connections),
      },
    );

    await topUp(Math.ceil(Math.max(warm.peak, 500) * ctx.durationSeconds * TIMED_HEADROOM) + ctx.connections);
    const poolSize = pool.remaining;
    const signRate = signed > 0 ? signed / signSeconds : undefined;
    ctx.log(
      `exchange (${opts.tag}): warm at ${Math.round(warm.rate)}/s (steps ${warm.steps.join(' ')}); ` +
        `${signed} assertions signed${signRate ? ` at ${Math.round(signRate)}/s` : ''}, ${carriedOver} carried over from the row before; ` +
        `${ctx.durationSeconds} s, ${ctx.connections} connections, ${poolSize} distinct assertions`,
    );
    await opts.timed?.before();
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
    const extra = (await opts.timed?.after(run.ok)) ?? {};
    if (profile) ctx.log(`exchange (${opts.tag}): CPU profile of the timed run: ${profile}`);

    // The pool ran out before the time did: the rate still holds, over a shorter window.
    const endedEarly = run.seconds < ctx.durationSeconds * 0.9 ? `pool of ${poolSize} used up after ${run.seconds.toFixed(1)} s` : undefined;
    return {
      name: opts.name,
      value: run.rate,
      unit: 'req/s',
      p50_ms: run.p50_ms,
      p99_ms: run.p99_ms,
      note:
        `broker in a child process, ${opts.storeNote}; POST /oauth2/token, GitHub RS256 assertion -> ES256 job token; ` +
        `${ctx.connections} connections${profile ? '; CPU-PROFILED (slower)' : ''}`,
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
        assertions_signed: signed,
        ...(signRate ? { assertions_signed_per_s: Math.round(signRate) } : {}),
        assertions_carried_over: carriedOver,
        ...extra,
        ...(endedEarly ? { ended_early: endedEarly } : {}),
        ...(profile ? { cpu_profile: profile } : {}),
      },
      problems: loadProblems('timed run', run),
      targets: opts.targets,
    };
  } finally {
    await broker.stop();
  }
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
