/**
 * The record of every call: each `proxy.call` event is appended to a local spool file first
 * (JSON lines), then shipped to the broker's `POST /admin/audit/events` in batches. A broker
 * outage only lets the spool grow; shipping resumes when the broker is back, oldest first, and
 * a file is deleted only once the broker accepted all of it. Every event carries its own id, so
 * a batch re-sent after a lost answer is not counted twice (the broker drops duplicates).
 *
 * Spool files are `calls-<ms>-<seq>.jsonl`: the one being written, and closed ones waiting to be
 * shipped. A file left behind by a crash is shipped like any closed one; a torn last line is
 * skipped with a warning. Writes are batched per tick (one writev), not synced per event: a
 * process crash loses nothing written, a host crash may lose the last moments.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';

/** One audit event of type `proxy.call` (CONTRACT sections 7 and 8). */
export interface CallRecord {
  id: string;
  type: 'proxy.call';
  ts: string;
  jti?: string;
  job_id?: string;
  sub?: string;
  details: Record<string, unknown>;
}

export interface AuditSpoolOptions {
  dir: string;
  broker: string;
  credential: string;
  dispatcher: Dispatcher;
  log: Logger;
  /** Events per shipped batch (default 500, the broker's cap). */
  batchSize?: number;
  /** Bytes of JSON per shipped batch, at most (default 3 MiB; the broker takes 4 MiB). */
  batchBytes?: number;
  /** Ms between shipping rounds (default 1,000). */
  intervalMs?: number;
  /** A spool file is closed at this size (default 1 MiB). */
  segmentBytes?: number;
}

const SEGMENT = /^calls-(\d{13})-(\d{6})\.jsonl$/;

export class AuditSpool {
  private current: { name: string; stream: WriteStream; bytes: number; events: number } | null = null;
  private seq = 0;
  private corked = false;
  private timer: NodeJS.Timeout | null = null;
  private shipping: Promise<void> | null = null;
  /** Lines of a closed file already accepted by the broker (so a retry resumes after them). */
  private readonly shippedLines = new Map<string, number>();
  /** Events written and not yet accepted by the broker. */
  private pendingEvents = 0;
  private failures = 0;
  private nextAttemptAt = 0;
  private readonly batchSize: number;
  private readonly batchBytes: number;
  private readonly segmentBytes: number;

  constructor(private readonly opts: AuditSpoolOptions) {
    this.batchSize = opts.batchSize ?? 500;
    this.batchBytes = opts.batchBytes ?? 3 * 1024 * 1024;
    this.segmentBytes = opts.segmentBytes ?? 1024 * 1024;
  }

  /** Events recorded but not yet accepted by the broker. */
  get backlog(): number {
    return this.pendingEvents;
  }

  /** Creates the spool directory, counts what a previous run left, starts shipping. */
  async start(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    for (const name of await this.closedSegments()) {
      // Only lines that parse: a torn last line is skipped when shipped, so it is never pending.
      this.pendingEvents += parseLines(await readFile(join(this.opts.dir, name), 'utf8'), () => undefined).length;
    }
    this.timer = setInterval(() => void this.shipNow(), this.opts.intervalMs ?? 1_000);
    this.timer.unref();
  }

  /** Appends one event (never throws: a record that cannot be written is logged, the call goes on). */
  append(record: CallRecord): void {
    const line = `${JSON.stringify(record)}\n`;
    const segment = this.current ?? this.openSegment();
    if (!this.corked) {
      // Every event of this tick leaves in one write.
      this.corked = true;
      segment.stream.cork();
      process.nextTick(() => {
        this.corked = false;
        segment.stream.uncork();
      });
    }
    segment.stream.write(line);
    segment.bytes += Buffer.byteLength(line);
    segment.events += 1;
    this.pendingEvents += 1;
    if (segment.bytes >= this.segmentBytes) void this.rotate();
  }

  /** One shipping round now (also what the timer runs); concurrent calls share it. */
  shipNow(force = false): Promise<void> {
    if (!force && Date.now() < this.nextAttemptAt) return Promise.resolve();
    this.shipping ??= this.ship().finally(() => {
      this.shipping = null;
    });
    return this.shipping;
  }

  /** Closes the file being written and tries one last round of shipping (bounded by `ms`). */
  async stop(ms = 2_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.rotate();
    await Promise.race([this.shipNow(true), new Promise((resolve) => setTimeout(resolve, ms).unref())]);
  }

  private openSegment(): NonNullable<AuditSpool['current']> {
    this.seq = (this.seq + 1) % 1_000_000;
    const name = `calls-${String(Date.now()).padStart(13, '0')}-${String(this.seq).padStart(6, '0')}.jsonl`;
    const stream = createWriteStream(join(this.opts.dir, name), { flags: 'a', mode: 0o600 });
    stream.on('error', (err) => this.opts.log.error({ err: err.message, file: name }, 'audit spool: write failed'));
    this.current = { name, stream, bytes: 0, events: 0 };
    return this.current;
  }

  /** Closes the file being written (if it holds anything); the next event opens a new one. */
  private async rotate(): Promise<void> {
    const segment = this.current;
    if (!segment || segment.events === 0) return;
    this.current = null;
    await new Promise<void>((resolve) => segment.stream.end(resolve));
  }

  private async closedSegments(): Promise<string[]> {
    const names = await readdir(this.opts.dir).catch(() => [] as string[]);
    return names.filter((n) => SEGMENT.test(n) && n !== this.current?.name).sort();
  }

  private async ship(): Promise<void> {
    await this.rotate();
    for (const name of await this.closedSegments()) {
      const path = join(this.opts.dir, name);
      const events = parseLines(await readFile(path, 'utf8'), (line) =>
        this.opts.log.warn({ file: name, line }, 'audit spool: a torn or unreadable line skipped'),
      );
      let done = this.shippedLines.get(name) ?? 0;
      while (done < events.length) {
        const batch = this.nextBatch(events, done);
        const outcome = await this.post(batch);
        if (outcome === 'retry') {
          this.failures += 1;
          // Back off up to 30 s while the broker is away; the timer keeps trying.
          this.nextAttemptAt = Date.now() + Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6));
          this.shippedLines.set(name, done);
          return;
        }
        if (outcome === 'rejected') {
          // The broker will never take this file: keep it aside for an operator, never loop on it.
          await rename(path, `${path}.rejected`).catch(() => undefined);
          this.pendingEvents = Math.max(0, this.pendingEvents - (events.length - done));
          this.opts.log.error({ file: `${name}.rejected` }, 'audit spool: the broker rejected a batch; file kept aside');
          break;
        }
        done += batch.length;
        this.pendingEvents = Math.max(0, this.pendingEvents - batch.length);
      }
      this.failures = 0;
      this.nextAttemptAt = 0;
      this.shippedLines.delete(name);
      await unlink(path).catch(() => undefined);
    }
  }

  /** Lines (events) from `from` on, up to the broker's caps (count and bytes; at least one event). */
  private nextBatch(lines: readonly string[], from: number): string[] {
    const batch: string[] = [];
    let bytes = 0;
    for (let i = from; i < lines.length && batch.length < this.batchSize; i++) {
      const line = lines[i]!;
      if (batch.length > 0 && bytes + line.length > this.batchBytes) break;
      bytes += line.length + 1;
      batch.push(line);
    }
    return batch;
  }

  /** Sends spooled lines as `{"events": [...]}`: each line is one event's JSON already (checked when read). */
  private async post(lines: readonly string[]): Promise<'ok' | 'retry' | 'rejected'> {
    try {
      const res = await request(`${this.opts.broker}/admin/audit/events`, {
        method: 'POST',
        dispatcher: this.opts.dispatcher,
        headers: { authorization: `Bearer ${this.opts.credential}`, 'content-type': 'application/json' },
        body: `{"events":[${lines.join(',')}]}`,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      const text = await res.body.text();
      if (res.statusCode === 200) return 'ok';
      if (res.statusCode === 400 || res.statusCode === 413 || res.statusCode === 415) {
        this.opts.log.error({ status: res.statusCode, body: text.slice(0, 300) }, 'audit spool: batch refused');
        return 'rejected';
      }
      this.opts.log.warn({ status: res.statusCode }, 'audit spool: broker did not take the batch; retrying later');
      return 'retry';
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'audit spool: broker unreachable; records kept in the spool');
      return 'retry';
    }
  }
}

/** The lines of a spool file that hold a JSON object (a torn or damaged line is reported and skipped). */
function parseLines(text: string, onBad: (lineNo: number) => void): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) out.push(line);
    else onBad(i + 1);
  });
  return out;
}
