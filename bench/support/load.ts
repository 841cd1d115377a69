/**
 * One load run with autocannon (keep-alive connections, no pipelining), counted our way:
 * the rate is 200 answers per second over the window from the first request to the last 200,
 * and the latency percentiles are of 200 answers only, from autocannon's per-request timings
 * (its own histogram rounds to whole milliseconds).
 */
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';

/** Where requests go once a per-request body supply has run dry: a 404, never a replay. */
const EXHAUSTED_PATH = '/__bench_supply_exhausted__';

export interface LoadSpec {
  /** Full URL of the endpoint (POST). */
  url: string;
  headers: Record<string, string>;
  /** The same body on every request. */
  body?: string;
  /** A fresh body for each request (single-use credentials); undefined once none is left. */
  nextBody?: () => Buffer | undefined;
  /** At most this many requests (the size of the body supply). */
  maxRequests?: number;
  connections: number;
  seconds: number;
}

export interface LoadResult {
  /** Seconds from the first request to the last 200 answer. */
  seconds: number;
  /** 200 answers. */
  ok: number;
  /** 200 answers per second. */
  rate: number;
  /** 200 answers in each second of the window, the last one partial (shows a ramp or a stall). */
  perSecond: number[];
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Answers by status code. */
  status: Record<string, number>;
  /** Answers other than 200. */
  not200: number;
  /** Socket errors and timeouts (autocannon counts a timeout as an error too). */
  errors: number;
  timeouts: number;
  /** The body supply ran dry before the time was up. */
  exhausted: boolean;
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const url = new URL(spec.url);
  const latencies: number[] = [];
  const okAt: number[] = [];
  const status: Record<string, number> = {};
  let ok = 0;
  let lastOk = 0;
  let exhausted = false;
  const request: autocannon.RequestSpec = { method: 'POST', path: url.pathname + url.search, headers: spec.headers };
  if (spec.body !== undefined) request.body = spec.body;
  const nextBody = spec.nextBody;
  if (nextBody) {
    request.setupRequest = (req) => {
      const body = nextBody();
      if (body === undefined) {
        exhausted = true;
        return { ...req, method: 'GET', path: EXHAUSTED_PATH, body: Buffer.alloc(0) };
      }
      return { ...req, body };
    };
  }

  return new Promise((resolve, reject) => {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const instance = autocannon(
      {
        url: url.origin,
        connections: spec.connections,
        pipelining: 1,
        duration: spec.seconds,
        ...(spec.maxRequests === undefined ? {} : { amount: Math.max(spec.maxRequests, spec.connections) }),
        // How often autocannon checks its stop flag: a stopped run ends within this many ms.
        sampleInt: 100,
        requests: [request],
      },
      (err, result) => {
        clearTimeout(timer);
        if (err) {
          reject(err);
          return;
        }
        const sorted = Float64Array.from(latencies).sort();
        const seconds = ok > 0 ? (lastOk - started) / 1000 : result.duration;
        const perSecond: number[] = [];
        for (const t of okAt) {
          const bucket = Math.floor((t - started) / 1000);
          perSecond[bucket] = (perSecond[bucket] ?? 0) + 1;
        }
        resolve({
          seconds,
          ok,
          rate: ok > 0 ? ok / seconds : 0,
          perSecond: Array.from(perSecond, (n) => n ?? 0),
          p50_ms: percentile(sorted, 0.5),
          p90_ms: percentile(sorted, 0.9),
          p99_ms: percentile(sorted, 0.99),
          max_ms: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
          status,
          not200: Object.entries(status).reduce((n, [code, count]) => (code === '200' ? n : n + count), 0),
          errors: result.errors,
          timeouts: result.timeouts,
          exhausted,
        });
      },
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, ms: number) => {
      status[statusCode] = (status[statusCode] ?? 0) + 1;
      if (statusCode === 200) {
        ok += 1;
        lastOk = performance.now();
        okAt.push(lastOk);
        latencies.push(ms);
      } else if (exhausted) {
        instance.stop();
      }
    });
    // With `amount` autocannon ignores `duration`; this ends the run on time either way.
    timer = setTimeout(() => instance.stop(), spec.seconds * 1000);
  });
}

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank]!;
}

/** Problems that make a load result untrustworthy, for a row's `problems`. */
export function loadProblems(what: string, r: LoadResult): string[] {
  const problems: string[] = [];
  if (r.ok === 0) problems.push(`${what}: no 200 answer at all`);
  if (r.not200 > 0) {
    const codes = Object.entries(r.status)
      .filter(([code]) => code !== '200')
      .map(([code, n]) => `${n} x ${code}`)
      .join(', ');
    problems.push(`${what}: ${r.not200} answers other than 200 (${codes})`);
  }
  if (r.errors > 0) problems.push(`${what}: ${r.errors} socket errors (${r.timeouts} timeouts)`);
  if (r.exhausted) problems.push(`${what}: the pre-signed assertion pool ran dry`);
  return problems;
}

export interface WarmUpOptions {
  /** Seconds at least (the bench's warm-up setting). */
  minSeconds: number;
  /** Seconds at most, settled or not. */
  maxSeconds: number;
  /** Called before each one-second step with the best rate so far, e.g. to top up a pool of single-use bodies. */
  beforeStep?: (bestRate: number) => Promise<void>;
}

export interface WarmUpResult {
  /** The last step's rate. */
  rate: number;
  /** The best step's rate (what to size a pool of single-use bodies for). */
  peak: number;
  /** Rate of each step. */
  steps: number[];
  seconds: number;
}

/**
 * Warms a server up in one-second steps until its rate has settled (the last step within 10%
 * of the one before, either way), after `minSeconds` and within `maxSeconds`: V8 takes a few
 * seconds of load to optimise a server's hot path, longer on a busy machine. Throws if any
 * step saw a non-200 answer or a socket error.
 */
export async function warmUp(
  spec: Omit<LoadSpec, 'seconds' | 'maxRequests'> & { maxRequests?: () => number },
  opts: WarmUpOptions,
): Promise<WarmUpResult> {
  const steps: number[] = [];
  let seconds = 0;
  for (;;) {
    await opts.beforeStep?.(Math.max(0, ...steps));
    const { maxRequests, ...rest } = spec;
    const step = await runLoad({ ...rest, ...(maxRequests ? { maxRequests: maxRequests() } : {}), seconds: 1 });
    const problems = loadProblems('warm-up', step);
    if (problems.length > 0) throw new Error(problems.join('; '));
    steps.push(step.rate);
    seconds += step.seconds;
    const previous = steps.at(-2);
    const settled = previous !== undefined && Math.abs(step.rate / previous - 1) <= 0.1;
    if ((seconds >= opts.minSeconds && settled) || seconds >= opts.maxSeconds) {
      return { rate: step.rate, peak: Math.max(...steps), steps: steps.map(Math.round), seconds };
    }
  }
}
