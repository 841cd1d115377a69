/**
 * The proxy rows (CONTRACT section 9, issue 4): the same chat request, one target after another
 * in the same run, against the same upstream:
 *
 * - "upstream direct": the demo model server (bench/servers/upstream.ts, its own process);
 * - "nginx → upstream": nginx with one worker process (bench/support/nginx.ts); a note row,
 *   skipped, when there is no `nginx` on PATH;
 * - "node:http + undici pass-through (floor, context)": for context, the least a proxy on the
 *   mintgate proxy's stack does (bench/servers/node_passthrough.ts), so the gap to nginx can be
 *   split into what the platform costs and what the proxy's own work costs; no target;
 * - "proxy → upstream, verification + masking on": one mintgate proxy process (one event loop)
 *   with CONTRACT section 7's config: a real job token from an exchange at a broker process,
 *   verified locally (broker JWKS, verified-token cache, revocation check against the feed),
 *   the two block rules, the model scope read from the body, all ten mask types and
 *   `mask_fields` on the answer, one call record spooled per request;
 * - "proxy → upstream, masking off": the same route without `mask` and `mask_fields`, in a fresh
 *   proxy process.
 *
 * Every target gets the same bytes: `POST /v1/chat/completions`, 166 bytes of JSON, with
 * the job token in `Authorization` (the upstream and nginx ignore it); the answer is the demo
 * model's non-stream `chat.completion`, about 1.1 KB of JSON (`details.answer_bytes`) planting one fake secret of each
 * mask type. autocannon runs in this process, as for every other row: it is the only work this
 * process does during a timed run, and `details.cpu_cores` shows what each process used (on two
 * cores the load generator, the upstream and the proxy under test share them; other work on the
 * machine shows as a total well under 2). `details.req_per_cpu_second` is the rate per core of
 * CPU the process under test used, which moves much less with such other work than the rate.
 *
 * Two runs per target, after a warm-up:
 * - throughput: `BENCH_CONNECTIONS` (default 32) keep-alive connections, closed loop, for
 *   `BENCH_DURATION` seconds: the req/s of the row, and its p50/p99 at that saturation;
 * - latency: `BENCH_PROXY_LATENCY_CONNECTIONS` (default 1) connection, closed loop, for the same
 *   time: what one request waits with nothing queued in front of it. The "added" rows are the
 *   proxy's p50 and p99 here less the direct call's. At saturation (the throughput run) a
 *   closed-loop client's latency is mostly queueing (p50 ≈ connections / rate), so the
 *   difference there says how much lower the rate is, not what the proxy adds to a request; it
 *   is kept in the added rows' details for context.
 *
 * Targets (product brief): the proxy with verification and masking >= 0.6x nginx's req/s,
 * adding <= 0.35 ms p50 and <= 1.5 ms p99 to a direct call.
 */
import { loadProblems, runLoad, warmUp, type LoadResult } from '../support/load.js';
import { startChild } from '../support/child.js';
import { cpuMeter } from '../support/cpu_time.js';
import { findNginx, startNginx } from '../support/nginx.js';
import { CHAT_PATH } from '../support/proxy_config.js';
import { CHAT_BODY, chatHeaders, chatOnce, checkTarget, startProxyStack, type ProxyStack } from '../support/proxy_stack.js';
import type { BenchContext, MeasuredRow, Target } from '../support/types.js';

export const DIRECT_ROW_NAME = 'upstream direct';
export const NGINX_ROW_NAME = 'nginx → upstream';
export const MASKED_ROW_NAME = 'proxy → upstream, verification + masking on';
export const UNMASKED_ROW_NAME = 'proxy → upstream, masking off';
export const FLOOR_ROW_NAME = 'node:http + undici pass-through (floor, context)';
export const ADDED_P50_ROW_NAME = 'proxy added p50 (verification + masking on)';
export const ADDED_P99_ROW_NAME = 'proxy added p99 (verification + masking on)';

interface TargetRun {
  subject: string;
  throughput: LoadResult;
  latency: LoadResult;
  latencyConnections: number;
  warmSteps: number[];
  cores: Record<string, number>;
  answerBytes: number;
  profile?: string;
}

export async function measure(ctx: BenchContext): Promise<MeasuredRow[]> {
  const latencyConnections = latencyConnectionsFromEnv();
  const stack = await startProxyStack();
  try {
    const common = { upstream: stack.upstream.pid, broker: stack.broker.pid };
    const rows: MeasuredRow[] = [];
    const what = `${ctx.connections} connections (throughput), ${latencyConnections} (latency); autocannon in the bench process`;

    // 1. The upstream alone.
    const direct = await measureTarget(ctx, stack, {
      tag: 'direct',
      url: stack.upstreamUrl,
      pids: common,
      subject: 'upstream',
      check: (token) => checkTarget(DIRECT_ROW_NAME, stack.upstreamUrl, token, 'plain', false),
      latencyConnections,
    });
    rows.push(
      targetRow(ctx, DIRECT_ROW_NAME, direct, `demo model server (node:http, 1 process), called directly; ${what}`, []),
    );

    // 2. nginx, one worker, in front of the same upstream.
    const nginxBin = findNginx();
    if (!nginxBin) {
      ctx.log('proxy: nginx is not on PATH; its row is skipped');
      rows.push({
        name: NGINX_ROW_NAME,
        value: 0,
        unit: 'req/s',
        note: 'SKIPPED: no nginx on PATH (install nginx to compare against it); the proxy rows have no ratio to it',
        details: { skipped: true },
      });
    } else {
      const nginx = await startNginx(nginxBin, stack.upstreamUrl);
      try {
        const run = await measureTarget(ctx, stack, {
          tag: 'nginx',
          url: nginx.url,
          pids: { ...common, 'nginx worker': nginx.workerPid },
          subject: 'nginx worker',
          check: (token) => checkTarget(NGINX_ROW_NAME, nginx.url, token, 'plain', false),
          latencyConnections,
        });
        rows.push(
          targetRow(
            ctx,
            NGINX_ROW_NAME,
            run,
            `${nginx.version}, worker_processes 1, HTTP/1.1 keep-alive upstream pool, buffered access log; same upstream; ${what}`,
            [{ baseline: DIRECT_ROW_NAME }],
            { nginx: nginx.version },
          ),
        );
      } finally {
        await nginx.stop();
      }
    }

    // For context: the floor, a bare node:http + undici pass-through (what the platform costs).
    const floor = await startChild<{ url: string }>('servers/node_passthrough.ts', {
      env: { BENCH_UPSTREAM: stack.upstreamUrl },
      ...(ctx.cpuProfile ? { profileName: 'node-pass-through' } : {}),
    });
    try {
      const run = await measureTarget(ctx, stack, {
        tag: 'node pass-through',
        url: floor.info.url,
        pids: { ...common, 'node pass-through': floor.pid },
        subject: 'node pass-through',
        check: (token) => checkTarget(FLOOR_ROW_NAME, floor.info.url, token, 'plain', false),
        latencyConnections,
        profile: floor,
      });
      rows.push(
        targetRow(
          ctx,
          FLOOR_ROW_NAME,
          run,
          `for context: node:http server + undici pool (1 process) forwarding body and answer, chunked, nothing else (no token, route, mask or record); ${what}`,
          [{ baseline: NGINX_ROW_NAME }, { baseline: DIRECT_ROW_NAME }],
        ),
      );
    } finally {
      await floor.stop();
    }

    // 3. and 4. The mintgate proxy, masking on, then off, each in a fresh process.
    const proxyRun = async (mask: boolean) => {
      const proxy = await stack.startProxy({ mask, ...(ctx.cpuProfile ? { profileName: mask ? 'proxy-mask' : 'proxy-nomask' } : {}) });
      try {
        return await measureTarget(ctx, stack, {
          tag: mask ? 'proxy (mask)' : 'proxy (no mask)',
          url: proxy.url,
          pids: { ...common, 'mintgate proxy': proxy.child.pid },
          subject: 'mintgate proxy',
          check: (token) => checkTarget(mask ? MASKED_ROW_NAME : UNMASKED_ROW_NAME, proxy.url, token, mask ? 'masked' : 'plain', true),
          latencyConnections,
          profile: proxy.child,
        });
      } finally {
        await proxy.stop();
      }
    };
    const proxyNote = (mask: boolean) =>
      `mintgate proxy (1 process) with CONTRACT section 7's chat route${mask ? ' (all 10 mask types + mask_fields)' : ' without mask'}: ` +
      `local token verification (cached after the first request) + revocation check, model scope from the body, 2 block rules, ` +
      `call records spooled; broker in another process (memory store); ${what}`;
    const masked = await proxyRun(true);
    rows.push(
      targetRow(ctx, MASKED_ROW_NAME, masked, proxyNote(true), [
        { baseline: NGINX_ROW_NAME, target: 0.6 },
        { baseline: DIRECT_ROW_NAME },
        { baseline: UNMASKED_ROW_NAME },
        { baseline: FLOOR_ROW_NAME },
      ]),
    );
    const unmasked = await proxyRun(false);
    rows.push(targetRow(ctx, UNMASKED_ROW_NAME, unmasked, proxyNote(false), [{ baseline: NGINX_ROW_NAME }, { baseline: DIRECT_ROW_NAME }, { baseline: FLOOR_ROW_NAME }]));

    // The added latency, from the latency runs.
    const latencyOf = (name: string) => rows.find((r) => r.name === name && !r.details?.skipped)?.details?.latency as { p50_ms: number; p99_ms: number } | undefined;
    const nginxLatency = latencyOf(NGINX_ROW_NAME);
    const floorLatency = latencyOf(FLOOR_ROW_NAME);
    for (const [name, key, target] of [
      [ADDED_P50_ROW_NAME, 'p50_ms', 0.35],
      [ADDED_P99_ROW_NAME, 'p99_ms', 1.5],
    ] as const) {
      const added = masked.latency[key] - direct.latency[key];
      rows.push({
        name,
        value: added,
        unit: 'ms',
        note:
          `${key.slice(0, 3)} of "${MASKED_ROW_NAME}" less that of "${DIRECT_ROW_NAME}", both from the latency runs ` +
          `(${latencyConnections} connection${latencyConnections === 1 ? '' : 's'}, closed loop, ${ctx.durationSeconds} s each)`,
        details: {
          proxy_ms: round(masked.latency[key], 3),
          direct_ms: round(direct.latency[key], 3),
          latency_connections: latencyConnections,
          samples: { proxy: masked.latency.ok, direct: direct.latency.ok },
          masking_off_added_ms: round(unmasked.latency[key] - direct.latency[key], 3),
          ...(nginxLatency ? { nginx_added_ms: round(nginxLatency[key] - direct.latency[key], 3) } : {}),
          ...(floorLatency ? { node_pass_through_added_ms: round(floorLatency[key] - direct.latency[key], 3) } : {}),
          at_saturation: {
            connections: ctx.connections,
            added_ms: round(masked.throughput[key] - direct.throughput[key], 3),
            why_not_the_value: 'closed-loop latency at saturation is mostly queueing (p50 ≈ connections / rate)',
          },
        },
        targets: [{ target, better: 'lower' }],
      });
    }
    return rows;
  } finally {
    await stack.close();
  }
}

interface TargetSpec {
  tag: string;
  url: string;
  /** The processes whose CPU use the row reports (besides this one). */
  pids: Record<string, number>;
  /** Which of `pids` is under test (its req/s per core of CPU goes into the row). */
  subject: string;
  /** Checks the target answers right, with this token, before any load. */
  check: (token: string) => Promise<void>;
  latencyConnections: number;
  /** The child to CPU-profile during the throughput run (when the bench profiles). */
  profile?: { startProfile(): Promise<void>; stopProfile(): Promise<string | undefined> };
}

/** Sanity check, warm-up, throughput run (CPU-metered, maybe profiled), latency run. */
async function measureTarget(ctx: BenchContext, stack: ProxyStack, spec: TargetSpec): Promise<TargetRun> {
  // A fresh job token per target: no token can expire during a long run.
  const { token } = await stack.mintToken();
  await spec.check(token);
  const answerBytes = Buffer.byteLength((await chatOnce(spec.url, token)).text);
  const load = { url: `${spec.url}${CHAT_PATH}`, headers: chatHeaders(token), body: CHAT_BODY };

  ctx.log(`proxy: ${spec.tag}: warming up, then ${ctx.durationSeconds} s at ${ctx.connections} connections and ${ctx.durationSeconds} s at ${spec.latencyConnections}`);
  const warm = await warmUp({ ...load, connections: ctx.connections }, { minSeconds: ctx.warmupSeconds, maxSeconds: ctx.warmupSeconds * 3 });
  await spec.profile?.startProfile();
  const meter = cpuMeter(spec.pids);
  const throughput = await runLoad({ ...load, connections: ctx.connections, seconds: ctx.durationSeconds });
  const cores = meter.stop();
  const profile = await spec.profile?.stopProfile();
  if (profile) ctx.log(`proxy: ${spec.tag}: CPU profile of the throughput run: ${profile}`);
  const latency = await runLoad({ ...load, connections: spec.latencyConnections, seconds: ctx.durationSeconds });
  ctx.log(
    `proxy: ${spec.tag}: ${Math.round(throughput.rate)} req/s; latency run p50 ${latency.p50_ms.toFixed(3)} ms, p99 ${latency.p99_ms.toFixed(3)} ms`,
  );
  return {
    subject: spec.subject,
    throughput,
    latency,
    latencyConnections: spec.latencyConnections,
    warmSteps: warm.steps,
    cores,
    answerBytes,
    ...(profile ? { profile } : {}),
  };
}

function targetRow(ctx: BenchContext, name: string, run: TargetRun, note: string, targets: Target[], extra: Record<string, unknown> = {}): MeasuredRow {
  const { throughput: t, latency: l } = run;
  return {
    name,
    value: t.rate,
    unit: 'req/s',
    p50_ms: t.p50_ms,
    p99_ms: t.p99_ms,
    note: `${note}${run.profile ? '; CPU-PROFILED (slower)' : ''}`,
    details: {
      ...extra,
      ok: t.ok,
      seconds: round(t.seconds, 2),
      per_second: t.perSecond,
      connections: ctx.connections,
      p90_ms: round(t.p90_ms, 3),
      max_ms: round(t.max_ms, 3),
      status: t.status,
      errors: t.errors,
      warm_up_steps: run.warmSteps,
      answer_bytes: run.answerBytes,
      cpu_cores: run.cores,
      // Less sensitive to other work on the machine than the rate: what one core of it serves.
      ...(run.cores[run.subject] ? { req_per_cpu_second: { process: run.subject, value: Math.round(t.rate / run.cores[run.subject]!) } } : {}),
      latency: {
        connections: run.latencyConnections,
        rate: Math.round(l.rate),
        ok: l.ok,
        p50_ms: round(l.p50_ms, 3),
        p90_ms: round(l.p90_ms, 3),
        p99_ms: round(l.p99_ms, 3),
        max_ms: round(l.max_ms, 3),
        status: l.status,
      },
      ...(run.profile ? { cpu_profile: run.profile } : {}),
    },
    problems: [...loadProblems('throughput run', t), ...loadProblems('latency run', l)],
    ...(targets.length > 0 ? { targets } : {}),
  };
}

function latencyConnectionsFromEnv(): number {
  const text = process.env.BENCH_PROXY_LATENCY_CONNECTIONS;
  if (text === undefined || text === '') return 1;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_PROXY_LATENCY_CONNECTIONS: "${text}" is not a whole number >= 1`);
  return n;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
