/**
 * Follows the broker's `GET /admin/revocations/stream` (server-sent events) and hands each
 * revocation and approval decision to the proxy. After a disconnect it reconnects with
 * `Last-Event-ID`, so nothing is lost or repeated; it backs off with jitter while the broker is
 * away. It also answers the one question the proxy's fail-closed rule needs: how long since the
 * feed was last heard from (an event or a heartbeat)?
 */
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { RevocationEvent } from './revocations.js';

/** An approval decision as the stream carries it (`event: approval`, the approval's wire JSON). */
export interface ApprovalEvent {
  id: string;
  status: string;
  jti?: string;
  method?: string;
  path?: string;
  request_sha256?: string;
  [k: string]: unknown;
}

export interface FeedHandlers {
  revocation(event: RevocationEvent): void;
  approval(event: ApprovalEvent): void;
}

export interface FeedFollowerOptions {
  /** The broker's base URL. */
  broker: string;
  credential: string;
  handlers: FeedHandlers;
  log: Logger;
  now?: () => number;
  /** First reconnect delay in ms (default 250); it doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A connection silent for this long is dropped and reopened (default 45,000: three heartbeats). */
  silenceMs?: number;
}

export class FeedFollower {
  private readonly agent: Agent;
  private readonly now: () => number;
  private lastEventId: string | null = null;
  /** Connections opened with Last-Event-ID (a resume, not a fresh read of the deny-list). */
  private resumedCount = 0;
  private connectedFlag = false;
  private everConnected = false;
  /** Epoch ms the feed was last heard from; -Infinity before the first connection. */
  private lastHeardAt = -Infinity;
  private stopped = false;
  private abort: AbortController | null = null;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly opts: FeedFollowerOptions) {
    this.now = opts.now ?? Date.now;
    const silence = opts.silenceMs ?? 45_000;
    this.agent = new Agent({ connectTimeout: 5_000, headersTimeout: 10_000, bodyTimeout: silence, keepAliveTimeout: 1_000 });
  }

  /** True while a stream is open. */
  get connected(): boolean {
    return this.connectedFlag;
  }

  /** How many connections resumed after a known event (sent Last-Event-ID and were accepted). */
  get resumes(): number {
    return this.resumedCount;
  }

  /** True once a stream has been opened at least once (the deny-list was received). */
  get synced(): boolean {
    return this.everConnected;
  }

  /** Milliseconds since the feed was last heard from (Infinity before the first connection). */
  silenceMs(now = this.now()): number {
    return now - this.lastHeardAt;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
    await this.agent.close().catch(() => undefined);
  }

  private async run(): Promise<void> {
    const min = this.opts.minBackoffMs ?? 250;
    const max = this.opts.maxBackoffMs ?? 5_000;
    let backoff = min;
    while (!this.stopped) {
      const opened = await this.follow();
      if (this.stopped) break;
      backoff = opened ? min : Math.min(max, backoff * 2);
      // Jitter: a fleet of proxies does not reconnect to a restarted broker in one burst.
      await this.sleep(backoff / 2 + Math.random() * (backoff / 2));
    }
  }

  /** One connection, until it ends; resolves true when it was opened. */
  private async follow(): Promise<boolean> {
    this.abort = new AbortController();
    const headers: Record<string, string> = { authorization: `Bearer ${this.opts.credential}`, accept: 'text/event-stream' };
    if (this.lastEventId !== null) headers['last-event-id'] = this.lastEventId;
    let body;
    try {
      const res = await request(`${this.opts.broker}/admin/revocations/stream`, {
        dispatcher: this.agent,
        headers,
        signal: this.abort.signal,
      });
      body = res.body;
      if (res.statusCode !== 200) {
        const text = (await res.body.text().catch(() => '')).slice(0, 200);
        if (res.statusCode === 400 && this.lastEventId !== null) {
          // The broker does not know our position (its feed was reset): start over from the full list.
          this.opts.log.warn({ status: res.statusCode }, 'revocation feed: resume position refused; re-reading the deny-list');
          this.lastEventId = null;
        } else {
          this.opts.log.error({ status: res.statusCode, body: text }, 'revocation feed: the broker refused the stream (check the proxy credential)');
        }
        return false;
      }
    } catch (err) {
      if (!this.stopped) this.opts.log.warn({ err: (err as Error).message }, 'revocation feed: broker unreachable; retrying');
      return false;
    }

    const resumed = this.lastEventId !== null;
    if (resumed) this.resumedCount += 1;
    this.connectedFlag = true;
    this.everConnected = true;
    this.lastHeardAt = this.now();
    this.opts.log.info({ resumed }, 'revocation feed: connected');
    try {
      const parser = new SseParser((e) => this.dispatch(e));
      const utf8 = new TextDecoder(); // keeps a character split across chunks whole
      for await (const chunk of body as AsyncIterable<Buffer>) {
        this.lastHeardAt = this.now();
        parser.push(utf8.decode(chunk, { stream: true }));
      }
      if (!this.stopped) this.opts.log.warn('revocation feed: the broker ended the stream; reconnecting');
    } catch (err) {
      if (!this.stopped) this.opts.log.warn({ err: (err as Error).message }, 'revocation feed: stream broken; reconnecting');
    } finally {
      this.connectedFlag = false;
    }
    return true;
  }

  private dispatch(e: SseEvent): void {
    let data: unknown;
    try {
      data = JSON.parse(e.data);
    } catch {
      this.opts.log.warn({ event: e.event, id: e.id }, 'revocation feed: an event that is not JSON; ignored');
      return;
    }
    if (e.event === 'revocation') {
      const r = revocationFrom(data);
      if (r) this.opts.handlers.revocation(r);
      else this.opts.log.warn({ id: e.id }, 'revocation feed: a revocation event of unknown shape; ignored');
    } else if (e.event === 'approval') {
      const a = data as ApprovalEvent;
      if (a && typeof a.id === 'string' && typeof a.status === 'string') this.opts.handlers.approval(a);
    }
    // The position moves only after the event was applied.
    if (e.id !== undefined) this.lastEventId = e.id;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function revocationFrom(data: unknown): RevocationEvent | null {
  if (typeof data !== 'object' || data === null) return null;
  const d = data as Record<string, unknown>;
  const kind = (['jti', 'job', 'sub'] as const).find((k) => typeof d[k] === 'string');
  const at = Date.parse(String(d.at));
  const until = Date.parse(String(d.until));
  if (!kind || Number.isNaN(at) || Number.isNaN(until)) return null;
  return { kind, value: d[kind] as string, at, until };
}

interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** The text/event-stream framing (WHATWG HTML 9.2.6), incrementally. */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;

  constructor(private readonly emit: (event: SseEvent) => void) {}

  push(text: string): void {
    this.buffer += text;
    let start = 0;
    for (;;) {
      const nl = this.buffer.indexOf('\n', start);
      if (nl < 0) break;
      let line = this.buffer.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      start = nl + 1;
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
    // A line without an end is bounded: a broker never sends one this long.
    if (this.buffer.length > 1024 * 1024) throw new Error('an event line over 1 MiB');
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.emit({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
      this.data = [];
      this.event = '';
      this.id = undefined;
      return;
    }
    if (line.startsWith(':')) return; // a comment: the heartbeat
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}
