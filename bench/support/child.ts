/**
 * Servers under test run in their own process (so the load generator never shares their event
 * loop), started with `node --import tsx` and talking to us over the IPC channel:
 * - the child sends `{type: 'ready', ...info}` once listening (or `{type: 'failed', message}`);
 * - `{type: 'profile', action: 'start'}` starts the V8 CPU profiler of the child's main thread,
 *   `{type: 'profile', action: 'stop', path}` stops it and writes a `.cpuprofile` (so a profile
 *   covers the timed run only, not start-up or warm-up); the child answers `{type: 'profiled'}`;
 * - `{type: 'stop'}` closes the server and exits 0.
 * A child also exits when the channel closes, so a crashed bench never leaves a server behind.
 */
import { fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';

export const PROFILE_DIR = fileURLToPath(new URL('../results/profiles/', import.meta.url));

export interface ChildServer<T> {
  info: T;
  pid: number;
  /** Starts the child's CPU profiler (a no-op unless started with `profileName`). */
  startProfile(): Promise<void>;
  /** Stops it and returns the `.cpuprofile` written (undefined unless profiling). */
  stopProfile(): Promise<string | undefined>;
  /** Asks the child to stop; kills it (by pid) if it has not exited within 10 s. */
  stop(): Promise<void>;
}

export interface ChildOptions {
  /** Passed as the child's environment, over the bench's own. */
  env?: Record<string, string>;
  /** Enables start/stopProfile, writing bench/results/profiles/<name>-<time>.cpuprofile. */
  profileName?: string;
  /** Milliseconds to wait for `ready` (default 30,000). */
  startTimeoutMs?: number;
}

type Message = { type?: string; message?: string; path?: string };

/** Starts `script` (a path relative to bench/) and waits for its `ready` message. */
export async function startChild<T>(script: string, opts: ChildOptions = {}): Promise<ChildServer<T>> {
  const path = fileURLToPath(new URL(`../${script}`, import.meta.url));
  const child = fork(path, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  /** Sends `msg` and resolves with the first message that `accept` takes (or rejects on exit). */
  const ask = <R>(msg: object | null, accept: (m: Message) => R | undefined, timeoutMs: number, what: string) =>
    new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${script}: no answer to ${what} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const onMessage = (raw: unknown) => {
        const m = raw as Message;
        if (m?.type === 'failed') {
          cleanup();
          reject(new Error(`${script}: ${m.message}`));
          return;
        }
        const value = accept(m);
        if (value !== undefined) {
          cleanup();
          resolve(value);
        }
      };
      const onExit = (code: number | null, signal: string | null) => {
        cleanup();
        reject(new Error(`${script} exited (code ${code}, signal ${signal}) while waiting for ${what}`));
      };
      function cleanup(): void {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      }
      child.on('message', onMessage);
      child.once('exit', onExit);
      if (msg) child.send(msg);
    });

  let info: T;
  try {
    info = await ask(null, (m) => (m.type === 'ready' ? (m as T) : undefined), opts.startTimeoutMs ?? 30_000, 'start-up');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }

  const profileName = opts.profileName;
  return {
    info,
    pid: child.pid!,
    async startProfile() {
      if (!profileName) return;
      await ask({ type: 'profile', action: 'start' }, (m) => (m.type === 'profiled' ? true : undefined), 10_000, 'profile start');
    },
    async stopProfile() {
      if (!profileName) return undefined;
      mkdirSync(PROFILE_DIR, { recursive: true });
      const file = `${PROFILE_DIR}${profileName}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
      await ask({ type: 'profile', action: 'stop', path: file }, (m) => (m.type === 'profiled' ? true : undefined), 30_000, 'profile stop');
      return file;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The child side: report `ready` with `info`, serve profile requests, and run `close` then exit
 * 0 on `stop` or when the parent goes away. A start-up failure is reported and exits 1.
 */
export async function serveChild(start: () => Promise<{ info: Record<string, unknown>; close: () => Promise<void> }>): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new Error('run this through bench/run.ts (it needs an IPC channel)');
  let running;
  try {
    running = await start();
  } catch (err) {
    send({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  }
  const { info, close } = running;
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await close().catch(() => undefined);
    process.exit(0);
  };
  let session: Session | undefined;
  const profile = async (action: string | undefined, path: string | undefined) => {
    if (action === 'start') {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    } else if (action === 'stop' && session && path) {
      const { profile: data } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      await writeFile(path, JSON.stringify(data));
    }
    send({ type: 'profiled' });
  };
  process.on('message', (raw: unknown) => {
    const msg = raw as { type?: string; action?: string; path?: string };
    if (msg?.type === 'stop') void shutdown();
    if (msg?.type === 'profile') {
      profile(msg.action, msg.path).catch((err: Error) => send({ type: 'failed', message: `profiler: ${err.message}` }));
    }
  });
  process.on('disconnect', () => void shutdown());
  send({ type: 'ready', ...info });
}
