/**
 * Audit events (CONTRACT section 8). The hash-chained audit log arrives with its own issue;
 * until then events go to the structured log, so every token is already traceable by `jti`.
 * Events carry identifiers only: never a token or a secret.
 */
import type { Logger } from 'pino';

export type AuditEventType = 'token.issued' | 'token.denied' | 'token.revoked' | 'key.rotated';

export interface AuditEvent {
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
