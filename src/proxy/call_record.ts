/**
 * Builds the one `proxy.call` record of a call (CONTRACT sections 7 and 8): who (the token's
 * jti, sub and job), what (route, method, path, status, decision), masked counts by type, bytes
 * and latency, and, when `record.bodies` is on, the first `record.max_bytes` of each body,
 * masked with every detector whatever the route masks: the audit log never holds a secret.
 */
import type { ProxyConfig } from '../config/proxy.js';
import type { CallRecord } from './audit_spool.js';
import { DETECTOR_TYPES } from './mask/detectors.js';
import { createBodyMasker, type MaskCounts, type MaskPolicy } from './mask/index.js';
import type { VerifiedToken } from './token_verifier.js';

/** Every detector, and the usual secret-bearing JSON keys. */
const RECORD_POLICY: MaskPolicy = Object.freeze({
  types: DETECTOR_TYPES,
  fields: ['password', 'passwd', 'secret', 'client_secret', 'token', 'access_token', 'refresh_token', 'api_key', 'apikey', 'authorization'],
});

export interface CallOutcome {
  id: string;
  token: VerifiedToken | undefined;
  route: string | null;
  method: string;
  path: string;
  status: number;
  decision: string;
  masked: MaskCounts;
  bytesIn: number;
  bytesOut: number;
  latencyMs: number;
  approvalId: string | undefined;
  requestId: string;
  responseType?: string | undefined;
}

export class CallRecorder {
  bytesIn = 0;
  private readonly requestChunks: Buffer[] = [];
  private readonly responseChunks: Buffer[] = [];
  private requestKept = 0;
  private responseKept = 0;
  private readonly keep: number;

  /** What the response still needs masked for the record, given what the route masked already. */
  private responsePolicy: MaskPolicy;

  constructor(
    config: ProxyConfig['record'],
    private readonly requestType: string | undefined,
  ) {
    this.keep = config.bodies ? config.max_bytes : 0;
    this.responsePolicy = RECORD_POLICY;
  }

  /** The route masks the response with `policy`: the record need not do that work again. */
  responseMaskedWith(policy: MaskPolicy | null): void {
    if (policy) this.responsePolicy = recordRemainder(policy);
  }

  requestBody(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.requestKept += keepPart(chunk, this.requestChunks, this.keep - this.requestKept);
  }

  responseBody(chunk: Uint8Array): void {
    this.responseKept += keepPart(chunk, this.responseChunks, this.keep - this.responseKept);
  }

  finish(o: CallOutcome): CallRecord {
    const details: Record<string, unknown> = {
      route: o.route,
      method: o.method,
      path: o.path,
      status: o.status,
      decision: o.decision,
      masked: o.masked,
      bytes_in: this.bytesIn,
      bytes_out: o.bytesOut,
      latency_ms: Math.round(o.latencyMs * 1000) / 1000,
      request_id: o.requestId,
    };
    if (o.token) details.client_id = o.token.client_id;
    if (o.approvalId) details.approval_id = o.approvalId;
    if (this.keep > 0) {
      if (this.requestKept > 0) details.request_body = maskedText(RECORD_POLICY, this.requestChunks, this.requestType, this.bytesIn > this.requestKept);
      if (this.responseKept > 0) details.response_body = maskedText(this.responsePolicy, this.responseChunks, o.responseType, o.bytesOut > this.responseKept);
    }
    return {
      id: o.id,
      type: 'proxy.call',
      ts: new Date().toISOString(),
      ...(o.token ? { jti: o.token.jti, sub: o.token.sub, job_id: o.token.job_id } : {}),
      details,
    };
  }
}

/**
 * Keeps up to `room` bytes of `chunk`, by reference: request and response chunks are fresh
 * buffers nobody writes to again, and copying every body was a tenth of a record's cost.
 */
function keepPart(chunk: Uint8Array, into: Buffer[], room: number): number {
  if (room <= 0) return 0;
  const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
  into.push(Buffer.isBuffer(part) ? part : Buffer.from(part.buffer, part.byteOffset, part.length));
  return part.length;
}

/** What is left of RECORD_POLICY after a route's policy, per route policy (computed once each). */
const REMAINDERS = new WeakMap<MaskPolicy, MaskPolicy>();

/** The part of RECORD_POLICY that `done` did not cover (one object per `done`: maskers remember per policy). */
function recordRemainder(done: MaskPolicy): MaskPolicy {
  let left = REMAINDERS.get(done);
  if (left === undefined) {
    const fields = new Set(done.fields.map((f) => f.toLowerCase()));
    left = Object.freeze({ types: RECORD_POLICY.types.filter((t) => !done.types.includes(t)), fields: RECORD_POLICY.fields.filter((f) => !fields.has(f)) });
    REMAINDERS.set(done, left);
  }
  return left;
}

/** The kept bytes, masked with `policy` (an empty one passes text through); a binary body is described, not kept. */
function maskedText(policy: MaskPolicy, chunks: Buffer[], contentType: string | undefined, truncated: boolean): { text: string; truncated: boolean } | { omitted: string } {
  const masker = createBodyMasker(policy, contentType ?? 'text/plain');
  if (!masker) return { omitted: `${contentType ?? 'unknown'} body not recorded` };
  const parts = chunks.map((c) => masker.write(c));
  parts.push(masker.end());
  const bytes = parts.filter((p) => p.length > 0).map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.length)));
  return { text: (bytes.length === 1 ? bytes[0]! : Buffer.concat(bytes)).toString('utf8'), truncated };
}
