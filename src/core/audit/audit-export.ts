/**
 * Audit entries exported by webhook (docs/audit.md, "Export by webhook"): an entry becomes an `audit.entry`
 * event only while a webhook subscribes to it, and only a webhook whose type filter names `audit` explicitly
 * does. A catch-all filter (none, or `a`) never receives one: who did what is given out only on purpose, by
 * someone allowed to read the log. Pure: the store asks it inside the transaction that appends the entry.
 */
import type { AuditEntry } from './audit-chain.js';

/** The event type an audit entry is exported as. */
export const AUDIT_EVENT_TYPE = 'audit.entry';

/** Whether one type prefix of a webhook's filter asks for audit entries: `audit`, `audit.` or `audit.entry`. */
export const namesAudit = (prefix: string): boolean =>
  prefix.startsWith('audit') && AUDIT_EVENT_TYPE.startsWith(prefix);

/** Whether a webhook with these type prefixes receives audit entries. */
export const subscribesToAudit = (types: readonly string[]): boolean => types.some(namesAudit);

/** Whether an event type is the export of an audit entry (and so for `audit.read` holders only). */
export const isAuditEvent = (type: string): boolean => type === AUDIT_EVENT_TYPE;

/** Whether any of these webhooks (their type filters) subscribes: if none does, no event is written. */
export const auditExportWanted = (webhooks: ReadonlyArray<{ types: readonly string[] }>): boolean =>
  webhooks.some((w) => subscribesToAudit(w.types));

/** The event's data: the entry as `GET /api/v1/audit` shows it, chain hashes included, so a receiver can verify. */
export function auditEventData(e: AuditEntry): Record<string, unknown> {
  return {
    seq: e.seq,
    at: new Date(e.at).toISOString(),
    actor: e.actor,
    role: e.role,
    source: e.source,
    action: e.action,
    target: e.target,
    outcome: e.outcome,
    before: e.before ?? null,
    after: e.after ?? null,
    request_id: e.requestId,
    data: e.data,
    prev_hash: e.prevHash,
    hash: e.hash,
  };
}
