import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/core/audit/audit-chain.js';
import { ManualClock } from '../src/core/clock.js';
import { AuditPruner } from '../src/server/audit/audit-pruner.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { forEachBackend } from './support/stores.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');

function record(i: number, actor = 'api:admin'): AuditRecord {
  return {
    at: T0 + i * 1_000,
    actor,
    role: 'admin',
    source: '127.0.0.1',
    action: 'POST /api/v1/rollouts/:id/pause',
    target: { id: `ro_${i}` },
    outcome: 200,
    before: null,
    after: { state: 'paused' },
    requestId: `req-${i}`,
    data: {},
  };
}

async function appendMany(store: SqlStore, count: number, actor?: string): Promise<void> {
  for (let i = 1; i <= count; i++) await store.audit.append(record(i, actor));
}

forEachBackend((backend) => {
  describe('the audit chain', () => {
    it('verifies after appends and lists by actor, time and newest first', async () => {
      const store = await backend.open();
      expect((await store.audit.verify()).ok).toBe(true); // empty
      await appendMany(store, 5);
      await store.audit.append(record(6, 'api:ci'));
      const verdict = await store.audit.verify(2);
      expect(verdict).toMatchObject({ ok: true, checked: 6, head: { seq: 6 } });
      expect((await store.audit.list({ actor: 'api:ci', limit: 10 })).map((e) => e.seq)).toEqual([6]);
      expect((await store.audit.list({ since: T0 + 4_000, limit: 10 })).map((e) => e.seq)).toEqual([4, 5, 6]);
      const newest = await store.audit.list({ newestFirst: true, limit: 2 });
      expect(newest.map((e) => e.seq)).toEqual([6, 5]);
      expect(newest[1]).toMatchObject({
        target: { id: 'ro_5' },
        after: { state: 'paused' },
        requestId: 'req-5',
      });
    });

    it('names the entry edited directly in the database', async () => {
      const store = await backend.open();
      await appendMany(store, 5);
      await store.db
        .updateTable('audit_log')
        .set({ actor: 'api:someone-else' })
        .where('seq', '=', 3)
        .execute();
      const verdict = await store.audit.verify();
      expect(verdict).toMatchObject({ ok: false, checked: 2, firstBad: { seq: 3, fault: 'hash_mismatch' } });
    });

    it('names the entry after one deleted, and notices the newest one deleted', async () => {
      const store = await backend.open();
      await appendMany(store, 5);
      await store.db.deleteFrom('audit_log').where('seq', '=', 3).execute();
      expect(await store.audit.verify()).toMatchObject({ ok: false, firstBad: { seq: 4, fault: 'missing' } });

      const other = await backend.open();
      await appendMany(other, 5);
      await other.db.deleteFrom('audit_log').where('seq', '=', 5).execute();
      expect(await other.audit.verify()).toMatchObject({
        ok: false,
        firstBad: { seq: 5, fault: 'head_mismatch' },
      });
    });

    it('names the first of two entries swapped', async () => {
      const store = await backend.open();
      await appendMany(store, 5);
      await sql`update audit_log set seq = -1 where seq = 2`.execute(store.db);
      await sql`update audit_log set seq = 2 where seq = 3`.execute(store.db);
      await sql`update audit_log set seq = 3 where seq = -1`.execute(store.db);
      const verdict = await store.audit.verify();
      expect(verdict.ok).toBe(false);
      expect(verdict.firstBad?.seq).toBe(2);
    });

    it('prunes old entries and still verifies from the recorded anchor', async () => {
      const store = await backend.open();
      await appendMany(store, 6);
      expect(await store.audit.prune(T0 + 4_500, 2)).toBe(2);
      expect(await store.audit.prune(T0 + 4_500, 100)).toBe(2);
      expect(await store.audit.prune(T0 + 100_000, 100)).toBe(1); // the newest stays
      const verdict = await store.audit.verify();
      expect(verdict).toMatchObject({ ok: true, checked: 1, anchor: { seq: 5 }, head: { seq: 6 } });
      await store.audit.append(record(7));
      expect(await store.audit.verify()).toMatchObject({ ok: true, checked: 2 });
    });

    it('the retention run keeps the entries younger than its age, and they verify from the new anchor', async () => {
      const store = await backend.open();
      await appendMany(store, 6);
      const clock = new ManualClock(T0 + 10_000);
      const removed = await new AuditPruner(store, clock, 6_500).prune();
      expect(removed).toBe(3); // entries at T0+1 s … T0+3 s
      expect(await store.audit.verify()).toMatchObject({ ok: true, checked: 3, anchor: { seq: 3 } });
    });

    // Two SQLite handles in one process would block each other's event loop (better-sqlite3 waits synchronously
    // for the write lock); one SQLite file has one server, so there the appends race on one handle.
    it('keeps one chain when two stores on one database append at once', async () => {
      const [a, b] =
        backend.dialect === 'postgres' ? await backend.openPair() : Array(2).fill(await backend.open());
      const each = 40;
      const write = (store: SqlStore, actor: string) =>
        Promise.all(Array.from({ length: each }, (_, i) => store.audit.append(record(i + 1, actor))));
      await Promise.all([write(a, 'api:a'), write(b, 'api:b'), write(a, 'api:a2'), write(b, 'api:b2')]);
      const verdict = await b.audit.verify(17);
      expect(verdict).toMatchObject({ ok: true, checked: 4 * each, head: { seq: 4 * each } });
      expect(await a.audit.list({ actor: 'api:b2', limit: 1_000 })).toHaveLength(each);
    });
  });
});
