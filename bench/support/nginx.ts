/**
 * nginx as the reference reverse proxy of the proxy rows: one worker process, in front of the
 * same upstream, with keep-alive on both sides. It runs from a temporary prefix directory (config,
 * pid, logs and temp paths all inside it), in the foreground (`daemon off`) in its own process
 * group, and is stopped (SIGTERM, then SIGKILL) when the row is done or the bench exits.
 *
 * The config is what a careful operator would write for an API proxy, nothing tuned beyond it:
 * HTTP/1.1 keep-alive to the upstream (`keepalive 64` idle connections), `keepalive_requests`
 * raised on both sides so that neither nginx nor the load generator reconnects every 1,000
 * requests (node's server and undici pool, on the mintgate side, never do), and a buffered
 * access log (its counterpart of the proxy's call records).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { request } from 'undici';
import { freePort } from '../../test/support/ports.js';
import { killGroup, stopChild } from '../../test/support/process_group.js';

export interface NginxProxy {
  url: string;
  /** The master's pid. */
  pid: number;
  /** The worker's pid (the process that does the proxying). */
  workerPid: number;
  /** `nginx -v`, e.g. `nginx/1.22.1`. */
  version: string;
  stop(): Promise<void>;
}

/** Every nginx still running, reaped with SIGKILL if the bench exits without stopping it. */
const live = new Map<ChildProcess, string>();
let exitHook = false;

/** An executable `nginx` on PATH, or null. */
export function findNginx(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'nginx');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Starts nginx (`bin`) proxying every path to `upstream` (an http://host:port origin). */
export async function startNginx(bin: string, upstream: string): Promise<NginxProxy> {
  const target = new URL(upstream);
  const dir = await mkdtemp(join(tmpdir(), 'mintgate-bench-nginx-'));
  // Workers run as nginx's default user (nobody) when the master is root: let them reach the
  // temp paths (only used for bodies larger than the buffers, which the bench never sends).
  await chmod(dir, 0o755);
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log combined buffer=64k flush=1s;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream model {
    server ${target.hostname}:${target.port};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    location / {
      proxy_pass http://model;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const version = nginxVersion(bin);
  const child = spawn(bin, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  live.set(child, dir);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const [c, d] of live) {
        killGroup(c, 'SIGKILL');
        rmSync(d, { recursive: true, force: true });
      }
    });
  }
  const stop = async () => {
    await stopChild(child);
    live.delete(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr.trim() || readLog(dir)}`);
      const up = await request(`${url}/healthz`).then(
        async (res) => {
          await res.body.text();
          return res.statusCode === 200;
        },
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline) throw new Error(`nginx did not answer within 10 s: ${stderr.trim() || readLog(dir)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const workers = childPids(child.pid!);
    if (workers.length !== 1) throw new Error(`nginx runs ${workers.length} worker processes, expected 1`);
    return { url, pid: child.pid!, workerPid: workers[0]!, version, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `nginx/1.22.1` (what `nginx -v` writes to stderr). */
function nginxVersion(bin: string): string {
  const out = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return /nginx\/[\w.]+/.exec(`${out.stderr}${out.stdout}`)?.[0] ?? 'nginx (version unknown)';
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'error.log'), 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '(no error log)';
  }
}

/** Pids whose parent is `pid` (from /proc). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
