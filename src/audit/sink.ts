/**
 * Audit events (CONTRACT section 8). The hash-chained audit log arrives with its own issue;
 * until then events go to the structured log, so every token is already traceable by `jti`.
 * Events carry identifiers only: never a token or a secret.
 */
import type { Logger } from 'pino';

export type AuditEventType =
  | 'token.issued'
  | 'token.denied'
  | 'token.revoked'
  | 'key.rotated'
  | 'proxy.call'
  | 'approval.requested'
  | 'approval.decided';

export interface AuditEvent {
  /**
   * The event's id and time (RFC 3339) when it came with them: a `proxy.call` carries the
   * proxy's own, so the record names the call as the proxy saw it. Otherwise the sink assigns
   * them (the chained log's issue).
   */
  id?: string;
  ts?: string;
  type: AuditEventType;
  jti?: string;
  job_id?: string;
  sub?: string;
  details: Record<string, unknown>;
}

export interface AuditSink {
  emit(event: AuditEvent): void;
}

export class LogAuditSink implements AuditSink {
  constructor(private readonly log: Logger) {}
  emit(event: AuditEvent): void {
    this.log.info({ audit: event }, event.type);
  }
}

/** Keeps events in memory (tests). */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  emit(event: AuditEvent): void {
    this.events.push(structuredClone(event));
  }
}
