// Audit events for state changes. Anything that opens access is recorded
// first and refused if it cannot be (fail closed); anything that closes access
// (revocation, disable) goes ahead even when the recorder is down, and says so
// in the log — a kill switch must never wait for the audit trail.
import type { AuditEvent } from './model.ts';
import type { Log, RecordStore } from './ports.ts';
import { AirlockError } from './status.ts';
import { newId } from './ids.ts';
import { errorText } from './errors.ts';

export type EventInput = Omit<AuditEvent, 'id'>;

/** Where events go, and where a failure to write one is reported. */
export interface AuditTrail {
  records: RecordStore;
  log: Log;
}

/** Records an event that precedes granting something; throws 503 when it cannot be written. */
export async function recordEvent(audit: AuditTrail, event: EventInput): Promise<void> {
  try {
    await audit.records.putEvent({ id: newId('evt'), ...event });
  } catch (error) {
    audit.log.error('audit event not written; refusing', { type: event.type, subject: event.subject, error: errorText(error) });
    throw new AirlockError(503, 'recorder_unavailable', 'the audit recorder is unavailable, so nothing was granted or forwarded; retry shortly');
  }
}

/** Records an event after access was reduced; never throws. */
export async function recordEventAfter(audit: AuditTrail, event: EventInput): Promise<void> {
  try {
    await audit.records.putEvent({ id: newId('evt'), ...event });
  } catch (error) {
    audit.log.error('audit event not written after a revocation', { type: event.type, subject: event.subject, error: errorText(error) });
  }
}
