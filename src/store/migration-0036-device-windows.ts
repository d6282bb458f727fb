/**
 * 0036_device_windows: maintenance windows that belong to a device (set by an operator or reported by the
 * device), honoured by rollouts with `window: device_defined`, and the deferrals devices made of an offered
 * update within their rollout's budget (docs/rollouts.md). Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function deviceWindows(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('device_windows')
        .addColumn('device_id', binaryText, (c) =>
          c.primaryKey().references('devices.id').onDelete('cascade'),
        )
        // JSON array of window documents (the spec's `window` form).
        .addColumn('windows', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text')
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('update_deferrals')
        .addColumn('update_id', binaryText, (c) => c.primaryKey())
        .addColumn('device_id', binaryText, (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addColumn('rollout_id', binaryText)
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('first_at', time, (c) => c.notNull())
        .addColumn('deferred_until', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('update_deferrals_device')
        .on('update_deferrals')
        .column('device_id')
        .execute();
    },
  };
}
