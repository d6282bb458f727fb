/**
 * How many failed operator authentications an audit entry stands for, for the `operator_auth_failures` alert
 * (docs/alerts.md). The audit log is where they are counted because every replica writes to the same one.
 * A refused token or a wrong password (401) is an `auth.failed` entry, one each for the first few of a source's
 * minute and one summary for the rest (docs/audit.md); a refused sign-in that is not a 401 (a locked name, an
 * OpenID Connect user without a role) is only its `sign-in` entry, so a 401 sign-in is not counted twice.
 */
import type { AuditRecord } from '../audit/audit-chain.js';

export function operatorAuthFailures(entry: Pick<AuditRecord, 'action' | 'outcome' | 'data'>): number {
  const { data } = entry;
  if (entry.action === 'sign-in') return entry.outcome >= 400 && entry.outcome !== 401 ? 1 : 0;
  if (entry.action !== 'auth.failed') return 0;
  // The summary of a window: the failures not written one by one (those were counted as they came).
  if (typeof data.suppressed === 'number') {
    const apis = Array.isArray(data.apis) ? data.apis : [];
    return apis.includes('operator') ? data.suppressed : 0;
  }
  return data.api === 'operator' ? 1 : 0;
}
