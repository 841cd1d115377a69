/** Stopping test servers started in their own process group (redis-server and friends). */
import type { ChildProcess } from 'node:child_process';

/** Milliseconds between SIGTERM and SIGKILL. */
const STOP_GRACE_MS = 2_000;

/** Signals the child's whole process group; a group already gone is not an error. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone (ESRCH); nothing left to kill.
  }
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // The child may be unref'd; re-ref it so the event loop cannot end while we wait for exit.
  child.ref();
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
