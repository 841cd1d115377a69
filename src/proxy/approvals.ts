/**
 * Human approval of held requests, at the proxy's end. A request on a route with `approval` opens
 * an approval at the broker (`POST /admin/approvals`), then waits up to the route's `wait` for the
 * decision, which arrives over the revocation stream (`event: approval`).
 *
 * The same request retried (same token, method, path and body digest) waits on the same
 * approval instead of opening another, and a request approved after the client gave up passes
 * on its next try, once: approvers are not asked twice for one thing, and one approval lets one
 * call through.
 */
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import type { Approval } from '../store/store.js';
import { ProxyUnavailable } from './errors.js';
import type { ApprovalEvent } from './feed_follower.js';

/** What `POST /admin/approvals` is told about a held call: the broker's approval, as opened. */
export type HeldRequest = Pick<Approval, 'jti' | 'sub' | 'job_id' | 'route' | 'method' | 'path' | 'request_sha256'> & { model?: string | undefined };

export type ApprovalOutcome = { id: string; status: 'approved' | 'denied' | 'pending' | 'expired' };

export interface ApprovalDeskOptions {
  broker: string;
  credential: string;
  dispatcher: Dispatcher;
  log: Logger;
  now?: () => number;
}

interface Known {
  id: string;
  status: string;
  /** Epoch ms after which this entry is forgotten. */
  forgetAt: number;
}

/** How long an approval stays open at the broker, at least: a late approval still lets a retry through. */
const MIN_APPROVAL_SECONDS = 300;
const MAX_APPROVAL_SECONDS = 3600;

export class ApprovalDesk {
  private readonly now: () => number;
  /** Decisions seen on the feed, by approval id. */
  private readonly decisions = new Map<string, Known>();
  /** The approval opened for a request, by request key. */
  private readonly byRequest = new Map<string, Known>();
  private readonly waiters = new Map<string, Set<(status: string) => void>>();

  constructor(private readonly opts: ApprovalDeskOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** A decision from the feed. */
  decided(event: ApprovalEvent): void {
    const forgetAt = this.now() + MAX_APPROVAL_SECONDS * 1000;
    this.decisions.set(event.id, { id: event.id, status: event.status, forgetAt });
    for (const wake of this.waiters.get(event.id) ?? []) wake(event.status);
    this.waiters.delete(event.id);
  }

  /**
   * Holds one request until it is approved, denied or `waitSeconds` pass (or `signal` aborts:
   * the client went away). Resolves with the approval's id and status; rejects with
   * ProxyUnavailable when the broker cannot open the approval.
   */
  async hold(held: HeldRequest, waitSeconds: number, tokenExp: number, signal?: AbortSignal): Promise<ApprovalOutcome> {
    this.prune();
    const key = [held.jti, held.method, held.path, held.request_sha256].join('\n');
    let known = this.byRequest.get(key);
    if (known) {
      const status = this.decisions.get(known.id)?.status ?? known.status;
      if (status === 'approved') {
        this.byRequest.delete(key); // one approval, one call
        return { id: known.id, status: 'approved' };
      }
      if (status === 'denied') return { id: known.id, status: 'denied' };
    } else {
      const expiresIn = Math.max(1, Math.min(MAX_APPROVAL_SECONDS, Math.max(MIN_APPROVAL_SECONDS, waitSeconds), tokenExp - Math.floor(this.now() / 1000)));
      const id = await this.open(held, expiresIn);
      known = { id, status: 'pending', forgetAt: this.now() + expiresIn * 1000 };
      this.byRequest.set(key, known);
    }
    const status = await this.waitFor(known.id, waitSeconds * 1000, signal);
    if (status === 'approved') {
      this.byRequest.delete(key);
      return { id: known.id, status };
    }
    return { id: known.id, status: status === 'denied' || status === 'expired' ? status : 'pending' };
  }

  private async open(held: HeldRequest, expiresIn: number): Promise<string> {
    const body = JSON.stringify({ ...held, expires_in: expiresIn });
    let res;
    try {
      res = await request(`${this.opts.broker}/admin/approvals`, {
        method: 'POST',
        dispatcher: this.opts.dispatcher,
        headers: { authorization: `Bearer ${this.opts.credential}`, 'content-type': 'application/json' },
        body,
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
      });
    } catch (err) {
      throw new ProxyUnavailable('the approval service is unreachable; retry later', `POST /admin/approvals: ${(err as Error).message}`);
    }
    const text = await res.body.text();
    if (res.statusCode !== 201) {
      this.opts.log.error({ status: res.statusCode, body: text.slice(0, 200) }, 'approvals: the broker refused to open an approval');
      throw new ProxyUnavailable('the approval service refused the request; retry later', `POST /admin/approvals: ${res.statusCode}`);
    }
    const id = (JSON.parse(text) as { id?: unknown }).id;
    if (typeof id !== 'string') throw new ProxyUnavailable('the approval service answered oddly; retry later', 'approval without id');
    return id;
  }

  private waitFor(id: string, ms: number, signal?: AbortSignal): Promise<string> {
    const known = this.decisions.get(id);
    if (known) return Promise.resolve(known.status);
    return new Promise((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      const finish = (status: string): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        set.delete(finish);
        if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
        resolve(status);
      };
      const onAbort = (): void => finish('pending');
      const timer = setTimeout(() => finish('pending'), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      set.add(finish);
    });
  }

  private prune(): void {
    const now = this.now();
    for (const map of [this.decisions, this.byRequest]) for (const [k, v] of map) if (v.forgetAt <= now) map.delete(k);
  }
}
