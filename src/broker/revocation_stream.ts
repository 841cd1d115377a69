/**
 * `GET /admin/revocations/stream`: server-sent events that proxies follow (CONTRACT section 4):
 * `event: revocation` and `event: approval` (a decision on a held request), in feed order.
 * Each event carries its feed id; a reconnect with `Last-Event-ID` resumes right after it, with
 * nothing lost or repeated. A fresh connection first receives every live event, so a proxy
 * starting up learns the whole deny-list, and the decisions on approvals that have not expired
 * (it may be holding one of those requests). A comment line is a heartbeat.
 */
import type { Request, Response } from 'express';
import { InvalidRequest, TemporarilyUnavailable } from '../http/errors.js';
import { assertFeedId, compareFeedIds, StoreUnavailable, type FeedEvent } from '../store/store.js';
import { approvalJson } from './admin_approvals.js';
import { revocationJson } from './admin_revocations.js';
import { principalOf } from './auth.js';
import type { BrokerContext } from './context.js';

const BACKLOG_PAGE = 500;

export interface StreamOptions {
  /** Milliseconds between heartbeats (default 15,000). */
  heartbeatMs?: number;
}

export function revocationStreamEndpoint(ctx: BrokerContext, opts: StreamOptions = {}) {
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  return async (req: Request, res: Response): Promise<void> => {
    let cursor = req.get('last-event-id')?.trim() || null;
    if (cursor !== null) {
      try {
        assertFeedId(cursor);
      } catch {
        throw new InvalidRequest('Last-Event-ID is not an event id of this stream');
      }
    }
    // Subscribe before reading the backlog, and hold live events until it is sent: nothing that
    // arrives in between can fall through the gap.
    let held: FeedEvent[] | null = [];
    const send = (events: FeedEvent[]): void => {
      for (const event of events) {
        if (cursor !== null && compareFeedIds(event.id, cursor) <= 0) continue;
        const data = event.type === 'revocation' ? revocationJson(event.revocation) : approvalJson(event.approval);
        res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`);
        cursor = event.id;
      }
    };
    const unsubscribe = ctx.feed.subscribe({
      events: (events) => (held ? held.push(...events) : send(events)),
      // The broker is shutting down: end the stream; the follower reconnects (to another broker).
      ended: () => res.end(),
    });
    let page: FeedEvent[];
    try {
      page = await ctx.store.feedAfter(cursor, BACKLOG_PAGE);
    } catch (err) {
      unsubscribe();
      if (err instanceof StoreUnavailable) throw new TemporarilyUnavailable(err.message);
      throw err;
    }

    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // no proxy buffering: an event must leave at once
    });
    res.write('retry: 1000\n\n');
    const heartbeat = setInterval(() => {
      // Heartbeats stop while the broker cannot read the feed, so a follower notices staleness.
      if (ctx.feed.healthy()) res.write(': heartbeat\n\n');
    }, heartbeatMs);
    const principal = principalOf(req);
    const expiry =
      principal.exp === undefined ? undefined : setTimeout(() => res.end(), Math.max(0, principal.exp * 1000 - ctx.now()));
    res.on('close', () => {
      unsubscribe();
      clearInterval(heartbeat);
      if (expiry) clearTimeout(expiry);
    });

    try {
      while (page.length > 0) {
        send(page);
        if (page.length < BACKLOG_PAGE) break;
        page = await ctx.store.feedAfter(cursor, BACKLOG_PAGE);
      }
    } catch (err) {
      ctx.log.warn({ req_id: req.id, err: (err as Error).message }, 'revocation stream: backlog read failed');
      res.end();
      return;
    }
    const pending = held;
    held = null;
    send(pending);
  };
}
