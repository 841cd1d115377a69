/**
 * CPU time of the processes of a load run, so a row can say what each one used (in cores: CPU
 * seconds per second of the run) and a reader can see which one was the bottleneck on a small
 * machine. Linux only (/proc/PID/stat); elsewhere the figures are left out.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** /proc's clock ticks per second (USER_HZ), 100 on every Linux build that matters. */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) of `pid`, or undefined when /proc cannot tell. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after its closing paren are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** A stopwatch over several processes; `this` (the harness and its load generator) is included. */
export function cpuMeter(pids: Record<string, number>): { stop(): Record<string, number> } {
  const started = performance.now();
  const self = process.cpuUsage();
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  return {
    /** Cores each process used over the interval (2 decimals), `load generator` for this one. */
    stop() {
      const seconds = (performance.now() - started) / 1000;
      const mine = process.cpuUsage(self);
      const cores: Record<string, number> = { 'load generator (bench process)': round((mine.user + mine.system) / 1e6 / seconds) };
      for (const [name, pid] of Object.entries(pids)) {
        const after = cpuSeconds(pid);
        const start = before[name];
        if (after !== undefined && start !== undefined) cores[name] = round((after - start) / seconds);
      }
      return cores;
    },
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
