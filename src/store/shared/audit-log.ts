/**
 * The audit log over Kysely, in SQL both databases share (docs/audit.md). An append first moves the one row of
 * `audit_head` on by one: that update holds the row (PostgreSQL) or the database's write lock (SQLite) until
 * the entry is committed, so appends from any number of replicas queue there and form one chain, and the
 * entry's number and previous hash come from the same row. Entries are never updated; pruning removes the
 * oldest ones and records the last one removed as the anchor verification starts from. While a webhook
 * subscribes to audit entries (core/audit/audit-export.ts), each entry is also written as an `audit.entry`
 * event in its transaction: exported whole or not at all.
 */
import type { Kysely } from 'kysely';
import {
  type AuditEntry,
  type AuditRecord,
  type ChainAnchor,
  ChainVerifier,
  entryHash,
} from '../../core/audit/audit-chain.js';
import { AUDIT_EVENT_TYPE, auditEventData, auditExportWanted } from '../../core/audit/audit-export.js';
import type { AuditLogTable, Database } from '../schema.js';
import type { AuditQuery, AuditStore, AuditVerdict } from '../store.js';
import { insertEvents } from './events.js';
import { transact } from './transact.js';

const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

function toEntry(row: AuditLogTable): AuditEntry {
  return {
    seq: Number(row.seq),
    at: Number(row.at),
    actor: row.actor,
    role: row.role,
    source: row.source,
    action: row.action,
    target: JSON.parse(row.target) as Record<string, string>,
    outcome: Number(row.outcome),
    before: parse(row.before),
    after: parse(row.after),
    requestId: row.request_id,
    data: JSON.parse(row.data) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

const stored = (value: unknown) => (value === undefined || value === null ? null : JSON.stringify(value));

export class SqlAuditLog implements AuditStore {
  constructor(private readonly db: Kysely<Database>) {}

  append(record: AuditRecord): Promise<AuditEntry> {
    return transact(this.db, async (trx) => {
      const head = await trx
        .updateTable('audit_head')
        .set((eb) => ({ seq: eb('seq', '+', 1) }))
        .where('id', '=', 1)
        .returning(['seq', 'hash'])
        .executeTakeFirstOrThrow();
      const seq = Number(head.seq);
      // What is hashed is what a reader gets back: JSON round-trips drop `undefined`, so the entry is made of it.
      const entry: AuditRecord = {
        ...record,
        target: JSON.parse(JSON.stringify(record.target)) as Record<string, string>,
        before: parse(stored(record.before)),
        after: parse(stored(record.after)),
        data: JSON.parse(JSON.stringify(record.data)) as Record<string, unknown>,
      };
      const hash = entryHash(seq, entry, head.hash);
      await trx
        .insertInto('audit_log')
        .values({
          seq,
          at: entry.at,
          actor: entry.actor,
          role: entry.role,
          source: entry.source,
          action: entry.action,
          target: JSON.stringify(entry.target),
          outcome: entry.outcome,
          before: stored(entry.before),
          after: stored(entry.after),
          request_id: entry.requestId,
          data: JSON.stringify(entry.data),
          prev_hash: head.hash,
          hash,
        })
        .execute();
      await trx.updateTable('audit_head').set({ hash }).where('id', '=', 1).execute();
      const appended = { ...entry, seq, prevHash: head.hash, hash };
      // Read after the head row is held: a webhook created before this entry commits is seen by it.
      const webhooks = await trx
        .selectFrom('webhooks')
        .select('types')
        .where('disabled_at', 'is', null)
        .execute();
      if (auditExportWanted(webhooks.map((w) => ({ types: JSON.parse(w.types) as string[] })))) {
        await insertEvents(trx, [
          {
            at: entry.at,
            type: AUDIT_EVENT_TYPE,
            deviceId: null,
            rolloutId: null,
            actor: entry.actor,
            reason: entry.action,
            data: auditEventData(appended),
          },
        ]);
      }
      return appended;
    });
  }

  async list(query: AuditQuery): Promise<AuditEntry[]> {
    let q = this.db.selectFrom('audit_log').selectAll();
    if (query.actor !== undefined) q = q.where('actor', '=', query.actor);
    if (query.since !== undefined) q = q.where('at', '>=', query.since);
    if (query.afterSeq !== undefined) q = q.where('seq', '>', query.afterSeq);
    if (query.upToSeq !== undefined) q = q.where('seq', '<=', query.upToSeq);
    const rows = await q
      .orderBy('seq', query.newestFirst ? 'desc' : 'asc')
      .limit(query.limit)
      .execute();
    return rows.map(toEntry);
  }

  async head(): Promise<{ head: ChainAnchor; anchor: ChainAnchor }> {
    const row = await this.db
      .selectFrom('audit_head')
      .selectAll()
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return {
      head: { seq: Number(row.seq), hash: row.hash },
      anchor: { seq: Number(row.anchor_seq), hash: row.anchor_hash },
    };
  }

  async verify(pageSize = 1_000): Promise<AuditVerdict> {
    const { head, anchor } = await this.head();
    const verifier = new ChainVerifier(anchor);
    let after = anchor.seq;
    // By seq from the anchor: an entry deleted or renumbered shows as a gap, whatever its time says.
    for (;;) {
      const page = await this.list({ afterSeq: after, upToSeq: head.seq, limit: pageSize });
      if (page.length === 0 || !verifier.check(page)) break;
      after = page.at(-1)!.seq;
    }
    return { ...verifier.end(head), head, anchor };
  }

  prune(before: number, limit: number): Promise<number> {
    return transact(this.db, async (trx) => {
      // Holding the head row keeps appends out while the anchor moves.
      const head = await trx
        .updateTable('audit_head')
        .set((eb) => ({ seq: eb.ref('seq') }))
        .where('id', '=', 1)
        .returning(['seq'])
        .executeTakeFirstOrThrow();
      // The newest entry always stays: the head's hash is checked against it.
      const last = await trx
        .selectFrom('audit_log')
        .select(['seq', 'hash'])
        .where('at', '<', before)
        .where('seq', '<', Number(head.seq))
        .orderBy('seq')
        .limit(limit)
        .execute();
      const end = last.at(-1);
      if (end === undefined) return 0;
      await trx.deleteFrom('audit_log').where('seq', '<=', end.seq).execute();
      await trx
        .updateTable('audit_head')
        .set({ anchor_seq: Number(end.seq), anchor_hash: end.hash })
        .where('id', '=', 1)
        .execute();
      return last.length;
    });
  }
}
