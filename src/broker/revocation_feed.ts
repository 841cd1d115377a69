/**
 * One follower of the store's feed (revocations and approval decisions) per broker process,
 * fanning new events out to every subscriber (the SSE streams of connected proxies). One loop,
 * whatever the number of proxies: on Redis that is one blocking XREAD, not one per proxy.
 */
import type { Logger } from 'pino';
import type { FeedEvent, Store } from '../store/store.js';

export type FeedListener = (events: FeedEvent[]) => void;

/** A subscriber: new events, and the end of the feed (the broker is shutting down). */
export interface FeedSubscriber {
  events: FeedListener;
  ended: () => void;
}

export interface RevocationFeedOptions {
  /** Milliseconds one wait for new events may last (default 1,000). */
  waitMs?: number;
  /** Events read per round (default 500). */
  pageSize?: number;
  /** Pause after a store failure, in ms (default 500). */
  retryMs?: number;
}

export class RevocationFeed {
  private readonly listeners = new Set<FeedSubscriber>();
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Epoch ms of the last successful read; streams stop their heartbeats when it is old. */
  private lastReadAt = Date.now();
  private readonly waitMs: number;
  private readonly pageSize: number;
  private readonly retryMs: number;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    opts: RevocationFeedOptions = {},
  ) {
    this.waitMs = opts.waitMs ?? 1_000;
    this.pageSize = opts.pageSize ?? 500;
    this.retryMs = opts.retryMs ?? 500;
  }

  /** Adds a subscriber for events appended from now on; returns the unsubscribe function. */
  subscribe(listener: FeedSubscriber): () => void {
    this.listeners.add(listener);
    this.running ??= this.follow().finally(() => {
      this.running = null;
    });
    return () => this.listeners.delete(listener);
  }

  /** True while the follower reads the store without errors (within a few waits). */
  healthy(now = Date.now()): boolean {
    return now - this.lastReadAt < this.waitMs * 3 + this.retryMs * 2;
  }

  /** Stops following and tells every subscriber the feed has ended (their streams close). */
  stop(): void {
    this.stopped = true;
    const subscribers = [...this.listeners];
    this.listeners.clear();
    for (const subscriber of subscribers) subscriber.ended();
  }

  private async follow(): Promise<void> {
    let cursor: string | null | undefined; // undefined: not positioned yet
    while (this.listeners.size > 0 && !this.stopped) {
      try {
        if (cursor === undefined) cursor = await this.latestId();
        const events = await this.store.waitForFeed(cursor, this.pageSize, this.waitMs);
        this.lastReadAt = Date.now();
        if (events.length === 0) continue;
        cursor = events.at(-1)!.id;
        for (const listener of this.listeners) listener.events(events);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'feed: store read failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, this.retryMs));
      }
    }
  }

  /** The id of the newest live event: the follower starts after it (subscribers read their own backlog). */
  private async latestId(): Promise<string | null> {
    let cursor: string | null = null;
    for (;;) {
      const page = await this.store.feedAfter(cursor, this.pageSize);
      if (page.length === 0) return cursor;
      cursor = page.at(-1)!.id;
    }
  }
}
