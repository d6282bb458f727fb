/**
 * 0038_metered_downloads: the downloads granted to devices on a metered link under a rollout's `metered_budget`
 * (core/metered-budget.ts), one row per grant with the bytes it may send, so the next grant sums a device's
 * bytes of the period. Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function meteredDownloads(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('metered_downloads')
        .addColumn('device_id', binaryText, (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addColumn('update_id', binaryText, (c) => c.notNull())
        .addColumn('granted_at', time, (c) => c.notNull())
        .addColumn('bytes', pg ? 'bigint' : 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('metered_downloads_pk', ['device_id', 'granted_at', 'update_id'])
        .execute();
    },
  };
}
