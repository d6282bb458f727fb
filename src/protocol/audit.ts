/** The audit log as the operator API shows it (GET /api/v1/audit, /audit/verify, /audit/export; docs/audit.md). */
import { type Static, Type } from 'typebox';
import type { AuditEntry, ChainVerdict } from '../core/audit/audit-chain.js';
import { auditEventData } from '../core/audit/audit-export.js';
import { Nullable } from './common.js';

export const AuditEntryJson = Type.Object({
  seq: Type.Integer(),
  at: Type.String({ description: 'ISO-8601 UTC' }),
  actor: Nullable(Type.String({ description: '`api:<token name>`; null when nobody authenticated' })),
  role: Nullable(Type.String()),
  source: Nullable(Type.String({ description: 'The client address the server saw' })),
  action: Type.String({ description: 'Method and route pattern, or `auth.failed`' }),
  target: Type.Record(Type.String(), Type.String()),
  outcome: Type.Integer({ description: 'The HTTP status answered' }),
  before: Type.Unknown(),
  after: Type.Unknown(),
  request_id: Nullable(Type.String()),
  data: Type.Record(Type.String(), Type.Unknown()),
  prev_hash: Type.String(),
  hash: Type.String({ description: 'SHA-256 of prev_hash and the canonical content of this entry' }),
});
export type AuditEntryJson = Static<typeof AuditEntryJson>;

/** The entry as the API shows it: the same document an `audit.entry` event carries (core/audit/audit-export.ts). */
export function auditEntryJson(e: AuditEntry): AuditEntryJson {
  return auditEventData(e) as AuditEntryJson;
}

const Link = Type.Object({ seq: Type.Integer(), hash: Type.String() });

export const AuditVerdictJson = Type.Object({
  ok: Type.Boolean(),
  checked: Type.Integer({ description: 'Entries checked' }),
  anchor: Link,
  head: Link,
  first_bad: Nullable(
    Type.Object({
      seq: Type.Integer(),
      fault: Type.String({ description: 'hash_mismatch, broken_link, missing or head_mismatch' }),
      message: Type.String(),
    }),
  ),
});
export type AuditVerdictJson = Static<typeof AuditVerdictJson>;

export function auditVerdictJson(
  v: ChainVerdict & { anchor: { seq: number; hash: string }; head: { seq: number; hash: string } },
): AuditVerdictJson {
  return { ok: v.ok, checked: v.checked, anchor: v.anchor, head: v.head, first_bad: v.firstBad ?? null };
}
