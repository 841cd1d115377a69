import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

import { freePort } from './ports.js';
import { killGroup, stopChild as stopGroup } from './process_group.js';

/** A throwaway `redis-server` child process owned by one test file. */
export interface RedisProcess {
  /** TCP port on 127.0.0.1; stays the same across {@link RedisProcess.restart}. */
  readonly port: number;
  /** `redis://127.0.0.1:PORT`, ready for ioredis or the store under test. */
  readonly url: string;
  /** SIGTERM to the process group, SIGKILL after 2 s, waits for exit, removes the temp dir. */
  stop(): Promise<void>;
  /**
   * Sends `signal` (default `SIGKILL`) to the process group and returns at once, to simulate a
   * crash. Call {@link RedisProcess.restart} or {@link RedisProcess.stop} afterwards.
   */
  kill(signal?: NodeJS.Signals): void;
  /**
   * Stops the server (if still running) and starts a fresh, empty one on the same port with the
   * same arguments, then waits for PING. Data is gone unless `keepData` and the server was
   * started with persistence (`args: ["--appendonly", "yes"]`).
   */
  restart(opts?: { keepData?: boolean }): Promise<void>;
}

/** Options for {@link startRedis}. */
export interface StartRedisOptions {
  /** Extra `redis-server` arguments appended after ours, e.g. `['--maxmemory', '1mb']`. */
  args?: string[];
}

/** How long to wait for a fresh server to answer PING, in milliseconds. */
const READY_TIMEOUT_MS = 5_000;

// Every child we spawned and has not exited yet, so the 'exit' hook can reap leftovers when a
// test file forgets stop() or dies on an assertion: a stray redis-server would hold its port
// and outlive CI.
const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [child, dir] of live) {
      killGroup(child, 'SIGKILL');
      // Synchronous on purpose: nothing asynchronous runs inside an 'exit' handler.
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/**
 * Looks for an executable `redis-server` on PATH.
 *
 * @returns its absolute path, or null when there is none.
 */
export function findRedisServer(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  return null;
}

function redisRequired(): boolean {
  return process.env.MINTGATE_REQUIRE_REDIS === '1';
}

/**
 * Options for `describe`/`it` that skip Redis-backed tests when `redis-server` is missing.
 *
 * With `MINTGATE_REQUIRE_REDIS=1` (CI) this never skips, so {@link startRedis} throws and the
 * suite fails loudly instead of passing vacuously.
 *
 * @example describe('RedisStore', redisTestOptions(), () => { ... })
 */
export function redisTestOptions(): { skip: string | false } {
  if (redisRequired() || findRedisServer() !== null) return { skip: false };
  return { skip: 'redis-server is not on PATH (set MINTGATE_REQUIRE_REDIS=1 to fail instead)' };
}

/**
 * Starts a private `redis-server` on a free port on 127.0.0.1 with persistence off
 * (`--save "" --appendonly no`) and a temp `--dir`, and waits until it answers PING.
 *
 * Never touches the shared Redis on 6379.
 *
 * @returns the running server, or null when `redis-server` is not on PATH (after a loud
 *   warning on stderr).
 * @throws Error when `redis-server` is missing and `MINTGATE_REQUIRE_REDIS=1`, or when the
 *   server does not answer PING within 5 s.
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisProcess | null> {
  const binary = findRedisServer();
  if (binary === null) {
    if (redisRequired()) {
      throw new Error('Redis is required (MINTGATE_REQUIRE_REDIS=1) but redis-server is not on PATH');
    }
    process.stderr.write(
      '\n!!! WARNING: redis-server is not on PATH; Redis-backed tests are SKIPPED.\n' +
        '!!! Install Redis or set MINTGATE_REQUIRE_REDIS=1 to make this a failure.\n\n',
    );
    return null;
  }
  installExitHook();

  const extra = opts.args ?? [];
  let dir = await mkdtemp(join(tmpdir(), 'mintgate-redis-'));
  // freePort() can race with another process; a couple of retries makes that a non-issue.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      let child = await launch(binary, port, dir, extra);
      const handle: RedisProcess = {
        port,
        url: `redis://127.0.0.1:${port}`,
        async stop() {
          await stopChild(child);
          await rm(dir, { recursive: true, force: true });
        },
        kill(signal: NodeJS.Signals = 'SIGKILL') {
          killGroup(child, signal);
        },
        async restart(restartOpts: { keepData?: boolean } = {}) {
          await stopChild(child);
          if (!restartOpts.keepData) {
            // stop() may have removed the dir already; a fresh one keeps restart() usable then.
            await rm(dir, { recursive: true, force: true });
            dir = await mkdtemp(join(tmpdir(), 'mintgate-redis-'));
          }
          child = await launch(binary, port, dir, extra);
        },
      };
      return handle;
    } catch (err) {
      lastError = err;
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error('redis-server did not start after 3 attempts', { cause: lastError });
}

async function launch(binary: string, port: number, dir: string, extra: string[]): Promise<ChildProcess> {
  const child = spawn(
    binary,
    [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--loglevel', 'warning',
      ...extra,
    ],
    // detached: its own process group, so stop() and the exit hook can kill the whole group.
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  live.set(child, dir);
  let output = '';
  const collect = (chunk: Buffer): void => {
    // Keep only the tail: enough to explain a failed start, bounded for a chatty server.
    output = (output + chunk.toString('utf8')).slice(-4096);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  child.once('exit', () => {
    live.delete(child);
  });
  // The pipes must not keep the test process alive once the server is up.
  child.unref();
  (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      break;
    }
    if (await pingRedis(port)) return child;
    await sleep(25);
  }
  await stopChild(child);
  const why = spawnError?.message ?? `exit ${child.exitCode ?? child.signalCode ?? 'timeout'}`;
  throw new Error(`redis-server on port ${port} did not answer PING (${why}): ${output.trim()}`);
}

/**
 * Sends an inline `PING` to 127.0.0.1:`port` and checks for `+PONG`. Raw RESP keeps this helper
 * free of a client library, so it also works when the code under test swaps its Redis client.
 *
 * @returns true on `+PONG`; false on refusal, error, another reply or 500 ms of silence.
 */
export function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('end', () => done(reply.startsWith('+PONG')));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  await stopGroup(child);
  live.delete(child);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
