/**
 * Throwaway Redis topologies for tests: a Redis Cluster ({@link startCluster}) and a Sentinel
 * set, master + replica + three sentinels ({@link startSentinelSet}). Every process is a
 * `redis-server` child on 127.0.0.1 on a free port with a temp dir of its own (never the shared
 * Redis on 6379); `stop()` ends them all and removes the dirs, and an exit hook reaps whatever a
 * failing test left behind. Like startRedis (test/support/redis.ts): when `redis-server` (or
 * `redis-cli`) is missing they warn loudly and return null, or throw when
 * MINTGATE_REQUIRE_REDIS=1; pair them with `redisTestOptions()`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

import { freePort } from './ports.js';
import { killGroup, stopChild as stopGroup } from './process_group.js';
import { findRedisServer, pingRedis } from './redis.js';

/** One `redis-server` process of a topology. */
export interface TopologyNode {
  readonly role: 'master' | 'replica' | 'sentinel';
  readonly port: number;
  readonly dir: string;
  /** True once the process has exited (killed or stopped). */
  readonly exited: boolean;
  /** Sends `signal` (default SIGKILL) to its process group and returns at once. */
  kill(signal?: NodeJS.Signals): void;
}

export interface RedisClusterHandle {
  /** `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,...`, every master as a seed. */
  readonly url: string;
  /** The masters, in the order of the URL. */
  readonly nodes: readonly TopologyNode[];
  /** Stops every node (SIGTERM, SIGKILL after 2 s), waits for them, removes their temp dirs. */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /** Number of masters (at least 3, as `redis-cli --cluster create` requires); default 3. */
  masters?: number;
  /** Extra `redis-server` arguments for every node. */
  args?: string[];
}

export interface SentinelSetHandle {
  /** `redis-sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/<name>`. */
  readonly url: string;
  /** The monitored master's name (`mymaster`). */
  readonly name: string;
  /** The node that was started as master, then the one started as replica. */
  readonly master: TopologyNode;
  readonly replica: TopologyNode;
  readonly sentinels: readonly TopologyNode[];
  /**
   * Sends `signal` (default SIGKILL: a crash, no goodbye; SIGSTOP: a hung or cut-off master
   * that keeps its connections open) to whichever data node the sentinels currently call master
   * and returns it at once; the sentinels then promote the other one. A SIGSTOPped node is
   * resumed (SIGCONT) by `stop()` before it is stopped.
   */
  killMaster(signal?: NodeJS.Signals): Promise<TopologyNode>;
  /**
   * Resolves with the port every sentinel names as master once it differs from `oldPort` and
   * that node says it is a master; rejects after `timeoutMs` (default 20,000).
   */
  waitForFailover(oldPort: number, timeoutMs?: number): Promise<number>;
  /** Port of the master as the sentinels see it now (asks the first one that answers). */
  currentMasterPort(): Promise<number | null>;
  /** Stops every process, waits for them, removes their temp dirs. */
  stop(): Promise<void>;
}

export interface StartSentinelSetOptions {
  /** Extra `redis-server` arguments for the master and the replica (e.g. persistence). */
  args?: string[];
  /** The master name (default `mymaster`). */
  name?: string;
}

/** Milliseconds to wait for a process to answer PING. */
const READY_TIMEOUT_MS = 5_000;
/** Milliseconds to wait for a whole topology to settle. */
const SETTLE_TIMEOUT_MS = 20_000;
/** Redis Cluster listens for its bus on the data port + 10,000. */
const BUS_OFFSET = 10_000;

// ---------------------------------------------------------------------------------------------
// Binaries and the MINTGATE_REQUIRE_REDIS policy

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

/** redis-server and redis-cli, or null after a loud warning; throws when Redis is required. */
function binaries(what: string): { server: string; cli: string } | null {
  const server = findRedisServer();
  const cli = findOnPath('redis-cli');
  if (server !== null && cli !== null) return { server, cli };
  const missing = [server === null ? 'redis-server' : null, cli === null ? 'redis-cli' : null].filter(Boolean).join(' and ');
  if (process.env.MINTGATE_REQUIRE_REDIS === '1') {
    throw new Error(`Redis is required (MINTGATE_REQUIRE_REDIS=1) but ${missing} is not on PATH (${what})`);
  }
  process.stderr.write(
    `\n!!! WARNING: ${missing} is not on PATH; the Redis ${what} tests are SKIPPED.\n` +
      '!!! Install Redis or set MINTGATE_REQUIRE_REDIS=1 to make this a failure.\n\n',
  );
  return null;
}

// ---------------------------------------------------------------------------------------------
// Processes

const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [child, dir] of live) {
      killGroup(child, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  await stopGroup(child);
  live.delete(child);
}

interface Proc extends TopologyNode {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Spawns `redis-server <args>` in its own process group and waits until it answers PING on
 * `port`. On failure the process is stopped (the dir is left to the caller).
 */
async function spawnNode(binary: string, role: Proc['role'], port: number, dir: string, args: string[]): Promise<Proc> {
  const child = spawn(binary, args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  live.set(child, dir);
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-4096);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  child.once('exit', () => live.delete(child));
  child.unref();
  (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) break;
    if (await pingRedis(port)) {
      return {
        role,
        port,
        dir,
        child,
        get exited() {
          return child.exitCode !== null || child.signalCode !== null;
        },
        kill: (signal: NodeJS.Signals = 'SIGKILL') => killGroup(child, signal),
        stop: () => stopChild(child),
      };
    }
    await sleep(25);
  }
  await stopChild(child);
  const why = spawnError?.message ?? `exit ${child.exitCode ?? child.signalCode ?? 'timeout'}`;
  throw new Error(`redis-server (${role}) on port ${port} did not answer PING (${why}): ${output.trim()}`);
}

/** Starts one node on a fresh port (from `pickPort`), retrying on a port race a few times. */
async function startNode(
  binary: string,
  role: Proc['role'],
  dirs: string[],
  pickPort: () => Promise<number>,
  argsFor: (port: number, dir: string) => Promise<string[]>,
): Promise<Proc> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), `mintgate-redis-${role}-`));
    dirs.push(dir);
    const port = await pickPort();
    try {
      return await spawnNode(binary, role, port, dir, await argsFor(port, dir));
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`redis-server (${role}) did not start after 3 attempts`, { cause: lastError });
}

/** Whether 127.0.0.1:`port` can be listened on right now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10,000) is free too. */
async function freeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    if (port + BUS_OFFSET <= 65_535 && (await portIsFree(port + BUS_OFFSET))) return port;
  }
  throw new Error('no free port P with P + 10000 free as well');
}

/** Runs redis-cli with `args`; resolves with its stdout. */
function cli(binary: string, args: string[], timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`.trim()));
      else resolve(stdout);
    });
  });
}

/** One command to 127.0.0.1:`port` through redis-cli; resolves with the raw reply text. */
function ask(binary: string, port: number, ...command: string[]): Promise<string> {
  return cli(binary, ['-h', '127.0.0.1', '-p', String(port), ...command], 2_000);
}

/** `field:value` lines of an INFO-style reply. */
function infoFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return out;
}

/** Polls `check` every 100 ms until it resolves true; throws with `what` and the last detail after `timeoutMs`. */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<true | string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const result = await check();
      if (result === true) return;
      last = result;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last})`);
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Stops every process in parallel, then removes every dir. */
async function stopAll(procs: Proc[], dirs: string[]): Promise<void> {
  // A stopped (SIGSTOP) process would hold SIGTERM pending until the SIGKILL fallback.
  for (const p of procs) p.kill('SIGCONT');
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

const NO_PERSISTENCE = ['--save', '', '--appendonly', 'no'];

// ---------------------------------------------------------------------------------------------
// Cluster

/**
 * Starts a Redis Cluster of `masters` masters (no replicas): one `redis-server --cluster-enabled
 * yes` per master on a port P with P + 10,000 (its bus port) free too, joined by
 * `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`, then waits until every node
 * says `cluster_state:ok`, knows every node and has every slot served.
 *
 * @returns the cluster, or null when redis-server or redis-cli is missing (after a warning).
 * @throws when MINTGATE_REQUIRE_REDIS=1 and they are missing, or when the cluster does not form.
 */
export async function startCluster(opts: StartClusterOptions = {}): Promise<RedisClusterHandle | null> {
  const masters = opts.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 3) throw new TypeError('a Redis Cluster needs at least 3 masters');
  const bin = binaries('Cluster');
  if (bin === null) return null;
  installExitHook();

  const procs: Proc[] = [];
  const dirs: string[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      procs.push(
        await startNode(bin.server, 'master', dirs, freeClusterPort, async (port, dir) => [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--dir', dir,
          '--cluster-enabled', 'yes',
          '--cluster-config-file', 'nodes.conf',
          '--cluster-node-timeout', '3000',
          ...NO_PERSISTENCE,
          '--loglevel', 'warning',
          ...(opts.args ?? []),
        ]),
      );
    }
    const addresses = procs.map((p) => `127.0.0.1:${p.port}`);
    await cli(bin.cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], 30_000);
    for (const p of procs) {
      await waitFor(`cluster node ${p.port} ready`, SETTLE_TIMEOUT_MS, async () => {
        const info = infoFields(await ask(bin.cli, p.port, 'CLUSTER', 'INFO'));
        const ok =
          info.get('cluster_state') === 'ok' &&
          info.get('cluster_slots_ok') === '16384' &&
          info.get('cluster_known_nodes') === String(masters) &&
          info.get('cluster_size') === String(masters);
        return ok || `state ${info.get('cluster_state')}, slots ok ${info.get('cluster_slots_ok')}, known ${info.get('cluster_known_nodes')}`;
      });
    }
    return {
      url: `redis-cluster://${addresses.join(',')}`,
      nodes: procs,
      stop: () => stopAll(procs, dirs),
    };
  } catch (err) {
    await stopAll(procs, dirs);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Sentinel

/**
 * Starts a master, one replica (`--replicaof`) and three sentinels (`redis-server sentinel.conf
 * --sentinel`, each monitoring the master with quorum 2, `down-after-milliseconds 1000`,
 * `failover-timeout 5000`, `parallel-syncs 1`, `resolve-hostnames no`), and waits until the
 * replica is in sync and every sentinel knows the master, the replica and the two other sentinels
 * (so that a failover can be authorised at once).
 *
 * @returns the set, or null when redis-server or redis-cli is missing (after a warning).
 * @throws when MINTGATE_REQUIRE_REDIS=1 and they are missing, or when the set does not settle.
 */
export async function startSentinelSet(opts: StartSentinelSetOptions = {}): Promise<SentinelSetHandle | null> {
  const name = opts.name ?? 'mymaster';
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new TypeError(`master name "${name}": letters, digits, . _ - only`);
  const bin = binaries('Sentinel');
  if (bin === null) return null;
  installExitHook();

  const procs: Proc[] = [];
  const dirs: string[] = [];
  const dataArgs = (port: number, dir: string): string[] => [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    ...NO_PERSISTENCE,
    // A full sync starts at once, not after the default 5 s wait for more replicas.
    '--repl-diskless-sync-delay', '0',
    '--loglevel', 'warning',
    ...(opts.args ?? []),
  ];
  try {
    const master = await startNode(bin.server, 'master', dirs, freePort, async (port, dir) => dataArgs(port, dir));
    procs.push(master);
    const replica = await startNode(bin.server, 'replica', dirs, freePort, async (port, dir) => [
      ...dataArgs(port, dir),
      '--replicaof', '127.0.0.1', String(master.port),
    ]);
    procs.push(replica);
    await waitFor('replica in sync', SETTLE_TIMEOUT_MS, async () => {
      const r = infoFields(await ask(bin.cli, replica.port, 'INFO', 'replication'));
      const m = infoFields(await ask(bin.cli, master.port, 'INFO', 'replication'));
      const online = [...m.entries()].some(([k, v]) => k.startsWith('slave') && v.includes(`port=${replica.port}`) && v.includes('state=online'));
      return (r.get('master_link_status') === 'up' && r.get('master_sync_in_progress') === '0' && online) || `replica link ${r.get('master_link_status')}, online ${online}`;
    });

    const sentinels: Proc[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinel = await startNode(bin.server, 'sentinel', dirs, freePort, async (port, dir) => {
        const conf = join(dir, 'sentinel.conf');
        await writeFile(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${dir}`,
            'loglevel warning',
            'sentinel resolve-hostnames no',
            `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
            `sentinel down-after-milliseconds ${name} 1000`,
            `sentinel failover-timeout ${name} 5000`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'),
        );
        return [conf, '--sentinel'];
      });
      sentinels.push(sentinel);
      procs.push(sentinel);
    }
    for (const s of sentinels) {
      await waitFor(`sentinel ${s.port} settled`, SETTLE_TIMEOUT_MS, async () => {
        const addr = (await ask(bin.cli, s.port, 'SENTINEL', 'get-master-addr-by-name', name)).split('\n').map((l) => l.trim());
        if (addr[1] !== String(master.port)) return `master ${addr.join(' ')}`;
        const fields = pairs(await ask(bin.cli, s.port, 'SENTINEL', 'master', name));
        const replicas = await ask(bin.cli, s.port, 'SENTINEL', 'replicas', name);
        const ok =
          fields.get('flags') === 'master' &&
          fields.get('num-slaves') === '1' &&
          fields.get('num-other-sentinels') === '2' &&
          replicas.includes(String(replica.port)) &&
          !/s_down|o_down|disconnected/.test(replicas);
        return ok || `flags ${fields.get('flags')}, replicas ${fields.get('num-slaves')}, other sentinels ${fields.get('num-other-sentinels')}`;
      });
    }

    const data = [master, replica];
    const currentMasterPort = async (): Promise<number | null> => {
      for (const s of sentinels) {
        if (s.exited) continue;
        try {
          const addr = (await ask(bin.cli, s.port, 'SENTINEL', 'get-master-addr-by-name', name)).split('\n').map((l) => l.trim());
          const port = Number(addr[1]);
          if (Number.isInteger(port) && port > 0) return port;
        } catch {
          // Try the next sentinel.
        }
      }
      return null;
    };
    return {
      url: `redis-sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${name}`,
      name,
      master,
      replica,
      sentinels,
      currentMasterPort,
      async killMaster(signal: NodeJS.Signals = 'SIGKILL') {
        const port = await currentMasterPort();
        const node = data.find((d) => d.port === port && !d.exited);
        if (!node) throw new Error(`no running data node is the master (the sentinels say port ${port})`);
        node.kill(signal);
        return node;
      },
      async waitForFailover(oldPort: number, timeoutMs = SETTLE_TIMEOUT_MS) {
        let promoted = 0;
        await waitFor('sentinel failover', timeoutMs, async () => {
          const ports = new Set<string>();
          for (const s of sentinels) ports.add((await ask(bin.cli, s.port, 'SENTINEL', 'get-master-addr-by-name', name)).split('\n')[1]?.trim() ?? '');
          const [only] = [...ports];
          if (ports.size !== 1 || only === String(oldPort)) return `sentinels say ${[...ports].join(', ')}`;
          const role = (await ask(bin.cli, Number(only), 'ROLE')).split('\n')[0]?.trim();
          if (role !== 'master') return `${only} is still ${role}`;
          promoted = Number(only);
          return true;
        });
        return promoted;
      },
      stop: () => stopAll(procs, dirs),
    };
  } catch (err) {
    await stopAll(procs, dirs);
    throw err;
  }
}

/** A flat `key\nvalue\n...` redis-cli reply as a map. */
function pairs(text: string): Map<string, string> {
  const lines = text.split('\n').map((l) => l.trim());
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) out.set(lines[i]!, lines[i + 1]!);
  return out;
}

/**
 * Options for `describe` that skip topology tests when redis-server or redis-cli is missing
 * (with a loud warning), like `redisTestOptions()`; with MINTGATE_REQUIRE_REDIS=1 they never
 * skip, so the start functions throw and the suite fails instead of passing vacuously.
 */
export function topologyTestOptions(): { skip: string | false } {
  if (process.env.MINTGATE_REQUIRE_REDIS === '1') return { skip: false };
  const missing = [findRedisServer() === null ? 'redis-server' : null, findOnPath('redis-cli') === null ? 'redis-cli' : null].filter(Boolean);
  if (missing.length === 0) return { skip: false };
  const why = `${missing.join(' and ')} not on PATH (set MINTGATE_REQUIRE_REDIS=1 to fail instead)`;
  process.stderr.write(`\n!!! WARNING: Redis topology tests are SKIPPED: ${why}\n\n`);
  return { skip: why };
}
