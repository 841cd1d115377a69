/**
 * What a benchmark row module returns, and what `bench/results/latest.json` holds.
 *
 * A row module is a file `bench/rows/NN_name.ts` exporting
 * `async function measure(ctx: BenchContext): Promise<Row[]>`. `bench/run.ts` finds every such
 * file, runs them in file-name order (the `NN_` prefix), then resolves the comparisons: a row
 * names the rows it is compared against by `name`, and the ratios are computed from values
 * measured in the same run.
 */

/** A target a row is held to. */
export interface Target {
  /**
   * Name of another row of the same run. With it, `ratio = value / baseline.value` is what the
   * target applies to; without it, the row's own `value` is.
   */
  baseline?: string;
  /**
   * The bound: a minimum when `better` is `higher` (default), a maximum when `lower`. Without
   * it (only with a `baseline`) the comparison is for context: its ratio is reported and
   * nothing is held to it (no `pass`).
   */
  target?: number;
  better?: 'higher' | 'lower';
}

/** A row as a module reports it (before the comparisons are resolved). */
export interface MeasuredRow {
  /** Unique in a run; other rows refer to it by this name. */
  name: string;
  value: number;
  /** `ops/s`, `req/s`, `ms`, `MB/s`, ... */
  unit: string;
  p50_ms?: number;
  p99_ms?: number;
  /** One line on what exactly was measured (token format, connection count, ...). */
  note?: string;
  /**
   * Raw figures behind the value: counts, durations, settings. `skipped: true` marks a row that
   * could not be measured on this machine (its `note` says why); the table shows it as skipped.
   */
  details?: Record<string, unknown>;
  /**
   * Anything that makes the figure untrustworthy (non-2xx answers, socket errors, a pool that
   * ran dry). A row with problems makes `npm run bench` exit non-zero.
   */
  problems?: string[];
  targets?: Target[];
}

/** One resolved comparison. */
export interface Comparison {
  baseline?: string;
  /** value / baseline value; absent for an absolute target or a missing baseline. */
  ratio?: number;
  /** Absent for a comparison made for context only. */
  target?: number;
  better: 'higher' | 'lower';
  /** Absent when the baseline row was not measured in this run, or there is no target. */
  pass?: boolean;
}

/**
 * A row as written to latest.json. `baseline`, `ratio`, `target` and `pass` describe the row's
 * first (primary) target; `comparisons` lists all of them, the primary one included.
 */
export interface Row extends Omit<MeasuredRow, 'targets'> {
  baseline?: string;
  ratio?: number;
  target?: number;
  pass?: boolean;
  comparisons?: Comparison[];
}

export interface BenchResults {
  date: string;
  node: string;
  cpus: number;
  /** 1-minute load average before the run; a busy machine makes every figure lower. */
  loadavg_before?: number;
  rows: Row[];
  /** Row modules that threw, with their message. */
  errors?: Array<{ module: string; message: string }>;
}

/** Settings shared by every row (environment overrides in parentheses). */
export interface BenchContext {
  /** Timed seconds per load run (`BENCH_DURATION`, default 8). */
  durationSeconds: number;
  /** Untimed warm-up seconds before each load run (`BENCH_WARMUP`, default 1.5). */
  warmupSeconds: number;
  /** Concurrent keep-alive connections of the load generator (`BENCH_CONNECTIONS`, default 32). */
  connections: number;
  /** CPU-profile each child server's timed run into bench/results/profiles (`BENCH_CPU_PROF=1`). */
  cpuProfile: boolean;
  /** Progress lines (stderr), so a long run shows where it is. */
  log(message: string): void;
  /**
   * Runs `close` once every row of the run has been measured (in the order given), for
   * something several rows share, such as the issuer and assertion pool of the exchange rows.
   */
  atEnd(close: () => Promise<void>): void;
}
