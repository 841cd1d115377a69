/**
 * `npm run bench`: runs every row module in bench/rows (file-name order), resolves each row's
 * targets against the other rows of the same run, prints a table and writes
 * bench/results/latest.json. It reports; it does not gate: a missed target still exits 0. A
 * measurement that broke (a row module threw, or a row reports problems such as non-2xx
 * answers) exits 1.
 *
 *   npm run bench                     every row
 *   npm run bench -- exchange peer    only row modules whose file name contains a word
 *                                     (written to bench/results/partial.json instead)
 *
 * What is measured is the product as it ships: dist/, which this script builds first
 * (MINTGATE_SKIP_BUILD=1 skips that); see support/shipped.ts.
 *
 * Environment: BENCH_DURATION (timed seconds per load run, default 8), BENCH_WARMUP (default 1.5),
 * BENCH_CONNECTIONS (default 32), BENCH_CPU_PROF=1 (each server's timed run is CPU-profiled into
 * bench/results/profiles/*.cpuprofile, at some cost to its rate; summarise one with
 * `node --import tsx bench/tools/profile_summary.ts FILE`, or open it in Chrome DevTools).
 *
 * The row "exchange (redis store)" starts a private redis-server (test/support/redis.ts) and fails
 * when there is none on PATH; it never uses a shared Redis.
 *
 * The proxy rows (rows/40_proxy.ts) compare against nginx when `nginx` is on PATH (its row is a
 * skipped note otherwise); BENCH_PROXY_LATENCY_CONNECTIONS (default 1) sets the connections of
 * their latency runs. The revocation row (rows/45_revocation.ts) runs BENCH_REVOCATION_TRIALS
 * (default 100, at least 50) trials.
 *
 *   npm run bench -- proxy            only the proxy rows
 *   npm run bench -- revocation       only the revocation row
 *
 * Adding a row: a file bench/rows/NN_name.ts exporting
 * `async function measure(ctx: BenchContext): Promise<MeasuredRow[]>` (see support/types.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchContext, BenchResults, Comparison, MeasuredRow, Row } from './support/types.js';

const ROWS_DIR = fileURLToPath(new URL('./rows/', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

interface RowModule {
  measure(ctx: BenchContext): Promise<MeasuredRow[]>;
}

const startedAt = performance.now();

function numberFromEnv(name: string, fallback: number, min: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}: "${text}" is not a number >= ${min}`);
  return n;
}

const atEnd: Array<() => Promise<void>> = [];

const ctx: BenchContext = {
  durationSeconds: numberFromEnv('BENCH_DURATION', 8, 1),
  warmupSeconds: numberFromEnv('BENCH_WARMUP', 1.5, 0.5),
  connections: Math.round(numberFromEnv('BENCH_CONNECTIONS', 32, 1)),
  cpuProfile: process.env.BENCH_CPU_PROF === '1',
  log(message) {
    process.stderr.write(`[bench ${((performance.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
  },
  atEnd(close) {
    atEnd.push(close);
  },
};

async function main(): Promise<number> {
  const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const files = readdirSync(ROWS_DIR)
    .filter((f) => /^\d+_[a-z0-9_]+\.ts$/.test(f))
    .sort()
    .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)));
  if (files.length === 0) {
    console.error(`no row module in bench/rows matches ${filters.join(', ')}`);
    return 1;
  }

  // The product is measured as it ships (bench/support/shipped.ts): dist/, built from this src/.
  if (process.env.MINTGATE_SKIP_BUILD !== '1') {
    ctx.log('building dist/ (what is measured)');
    const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit', cwd: fileURLToPath(new URL('..', import.meta.url)) });
    if (build.status !== 0) {
      console.error('npm run build failed; nothing measured');
      return 1;
    }
  }

  const load = loadavg()[0]!;
  if (load > 0.5) ctx.log(`note: load average is ${load.toFixed(2)} before the run; other work on this machine lowers every figure`);

  const measured: MeasuredRow[] = [];
  const errors: BenchResults['errors'] = [];
  for (const file of files) {
    ctx.log(`${file}`);
    try {
      const mod = (await import(pathToFileURL(`${ROWS_DIR}${file}`).href)) as RowModule;
      measured.push(...(await mod.measure(ctx)));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.log(`${file} FAILED: ${message}`);
      if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
      errors.push({ module: file, message });
    }
  }

  for (const close of atEnd) {
    try {
      await close();
    } catch (err) {
      // Everything is measured by now: a failed clean-up is worth a line, not a failed run.
      ctx.log(`clean-up after the rows failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const rows = resolveTargets(measured).map(tidy);
  const results: BenchResults = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    loadavg_before: Math.round(load * 100) / 100,
    rows,
    ...(errors.length > 0 ? { errors } : {}),
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const out = `${RESULTS_DIR}${filters.length === 0 ? 'latest.json' : 'partial.json'}`;
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);

  console.log(formatTable(rows));
  const broken = rows.filter((r) => (r.problems?.length ?? 0) > 0);
  for (const row of rows.filter(isSkipped)) console.log(`SKIPPED ${row.name}: ${row.note ?? '(no reason given)'}`);
  for (const row of broken) for (const p of row.problems!) console.log(`BROKEN  ${row.name}: ${p}`);
  for (const e of errors) console.log(`ERROR   ${e.module}: ${e.message}`);
  console.log(`\nwritten ${out.slice(out.lastIndexOf('bench/results/'))} (${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
  return broken.length > 0 || errors.length > 0 ? 1 : 0;
}

/** Turns each row's targets into comparisons against the values of this run. */
function resolveTargets(measured: MeasuredRow[]): Row[] {
  const byName = new Map(measured.map((r) => [r.name, r]));
  return measured.map(({ targets, ...row }) => {
    if (!targets || targets.length === 0) return row;
    const comparisons: Comparison[] = targets.map((t) => {
      const better = t.better ?? 'higher';
      const bound = t.target === undefined ? {} : { target: t.target };
      // No target: a ratio for context, with no pass.
      const holds = (x: number) => (t.target === undefined ? {} : { pass: better === 'higher' ? x >= t.target : x <= t.target });
      if (t.baseline === undefined) return { ...bound, better, ...holds(row.value) };
      const base = byName.get(t.baseline);
      if (!base || !(base.value > 0)) return { baseline: t.baseline, ...bound, better };
      const ratio = row.value / base.value;
      return { baseline: t.baseline, ratio: round(ratio, 3), ...bound, better, ...holds(ratio) };
    });
    const primary = comparisons[0]!;
    return {
      ...row,
      ...(primary.baseline === undefined ? {} : { baseline: primary.baseline }),
      ...(primary.ratio === undefined ? {} : { ratio: primary.ratio }),
      ...(primary.target === undefined ? {} : { target: primary.target }),
      ...(primary.pass === undefined ? {} : { pass: primary.pass }),
      comparisons,
    };
  });
}

/** Rounds the figures for latest.json (sub-microsecond digits and fractions of a request mean nothing). */
function tidy({ problems, ...row }: Row): Row {
  return {
    ...row,
    ...(problems && problems.length > 0 ? { problems } : {}),
    // A value in milliseconds (an added latency, a revocation time) keeps microseconds.
    value: round(row.value, row.unit === 'ms' ? 3 : 1),
    ...(row.p50_ms === undefined ? {} : { p50_ms: round(row.p50_ms, 3) }),
    ...(row.p99_ms === undefined ? {} : { p99_ms: round(row.p99_ms, 3) }),
  };
}

function formatTable(rows: Row[]): string {
  const header = ['name', 'rate', 'p50', 'p99', 'ratio', 'target', 'pass'];
  const lines: string[][] = [];
  for (const row of rows) {
    const broken = (row.problems?.length ?? 0) > 0;
    const base = [row.name, isSkipped(row) ? 'skipped' : `${formatValue(row.value)} ${row.unit}`, formatMs(row.p50_ms), formatMs(row.p99_ms)];
    const comparisons = row.comparisons ?? [];
    if (comparisons.length === 0) lines.push([...base, '', '', broken ? 'BROKEN' : '']);
    comparisons.forEach((c, i) => {
      const ratio = c.baseline === undefined ? '' : c.ratio === undefined ? `n/a (no ${c.baseline} row)` : `${c.ratio.toFixed(2)}x ${c.baseline}`;
      const target =
        c.target === undefined ? '(context)' : `${c.better === 'higher' ? '>=' : '<='} ${c.baseline === undefined ? c.target : `${c.target.toFixed(2)}x`}`;
      const pass = broken ? 'BROKEN' : c.target === undefined ? '' : c.pass === undefined ? '-' : c.pass ? 'PASS' : 'FAIL';
      lines.push([...(i === 0 ? base : ['', '', '', '']), ratio, target, pass]);
    });
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 1 && i <= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return ['', fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(fmt), ''].join('\n');
}

/** A row that could not be measured here (e.g. nginx not installed): `details.skipped`, the reason in `note`. */
function isSkipped(row: Row): boolean {
  return row.details?.skipped === true;
}

function formatValue(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2);
}

function formatMs(ms: number | undefined): string {
  if (ms === undefined || Number.isNaN(ms)) return '';
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

process.exit(await main());
