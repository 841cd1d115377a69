/**
 * Summarises a V8 `.cpuprofile` (from `BENCH_CPU_PROF=1 npm run bench`, or `node --cpu-prof`):
 * where the samples were taken (self time) and which frames were on the stack (inclusive time),
 * by function and by owner (a file of this repository, an npm package, or node's internals).
 *
 *   node --import tsx bench/tools/profile_summary.ts PATH [--top 25]
 *
 * PATH is a `.cpuprofile`, or a directory of them, in which case the newest is read.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const args = process.argv.slice(2);
const given = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--top');
const topIndex = args.indexOf('--top');
const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 25;
if (!given) {
  console.error('usage: profile_summary.ts FILE.cpuprofile|DIR [--top N]');
  process.exit(2);
}
const file = statSync(given).isDirectory() ? newestProfile(given) : given;

function newestProfile(dir: string): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (files.length === 0) throw new Error(`${dir}: no .cpuprofile in it`);
  return files[0]!;
}

const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/** Who a frame belongs to: `src/x.ts`, an npm package, `node:internal`, or a V8 pseudo-frame. */
function owner(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node (internals)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const repo = url.replace(/^file:\/\//, '').replace(/^.*?\/(src|bench|test)\//, '$1/');
  return repo;
}

function fnKey(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  const where = frame.url.startsWith('node:') ? frame.url : owner(frame);
  return `${name}  ${where}:${frame.lineNumber + 1}`;
}

const self = new Map<string, number>();
const selfOwner = new Map<string, number>();
const responsible = new Map<string, number>();
const inclusive = new Map<string, number>();
const inclusiveOwner = new Map<string, number>();
let total = 0;
let idle = 0;

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

/**
 * The nearest frame on the stack that belongs to this repository or a package: node's
 * internals and native code are charged to whoever called them (a socket write to express,
 * a WebCrypto job to jose). Garbage collection and idle stay as they are.
 */
function responsibleOwner(id: number): string {
  const leaf = byId.get(id)!.callFrame;
  if (leaf.functionName.startsWith('(') && !leaf.url) return leaf.functionName;
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at)!.callFrame;
    if (frame.url && !frame.url.startsWith('node:')) return owner(frame);
  }
  return `${owner(leaf)} (no caller of ours)`;
}

for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0;
  const node = byId.get(profile.samples[i]!);
  if (!node) continue;
  total += dt;
  if (node.callFrame.functionName === '(idle)') idle += dt;
  add(self, fnKey(node.callFrame), dt);
  add(selfOwner, owner(node.callFrame), dt);
  add(responsible, responsibleOwner(node.id), dt);
  const seenFn = new Set<string>();
  const seenOwner = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(root)') continue;
    const k = fnKey(frame);
    if (!seenFn.has(k)) {
      seenFn.add(k);
      add(inclusive, k, dt);
    }
    const o = owner(frame);
    if (!seenOwner.has(o)) {
      seenOwner.add(o);
      add(inclusiveOwner, o, dt);
    }
  }
}

const busy = total - idle;
const pct = (v: number, of: number) => `${((100 * v) / of).toFixed(1).padStart(5)}%`;
function print(title: string, m: Map<string, number>, of: number, n: number, filter: (k: string) => boolean = () => true): void {
  console.log(`\n${title}`);
  [...m.entries()]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .forEach(([k, v]) => console.log(`  ${pct(v, of)}  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`));
}

console.log(`${file}`);
console.log(
  `profile ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, sampled ${(total / 1e6).toFixed(1)} s, idle ${pct(idle, total).trim()}; percentages below are of the busy ${(busy / 1e6).toFixed(1)} s`,
);
print('self time by owner', selfOwner, busy, top, (k) => k !== '(idle)');
print('self time by function', self, busy, top, (k) => k !== '(idle)');
print('self time charged to the nearest caller of ours (node internals and native code included)', responsible, busy, top, (k) => k !== '(idle)');
print('inclusive time by owner (any frame of it on the stack)', inclusiveOwner, busy, top, (k) => k !== '(idle)');
print('inclusive time, functions of this repository', inclusive, busy, top, (k) => / (src|bench|test)\//.test(k));
