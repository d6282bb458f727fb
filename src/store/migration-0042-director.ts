/**
 * 0042_director: the director's signed metadata for each device (docs/signing.md, "The director"): the current
 * targets, snapshot and timestamp it signed for that device, whose versions only grow. No foreign key to
 * devices: the versions outlive a device removed and enrolled again under the same id, whose agent may still
 * hold the newer metadata it trusted (a version going back would be refused as a rollback). Released
 * migrations are never edited.
 */
import type { Kysely, Migration } from 'kysely';
import { sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function director(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('director_metadata')
        .addColumn('device_id', binaryText, (c) => c.primaryKey())
        .addColumn('targets_version', 'integer', (c) => c.notNull())
        .addColumn('snapshot_version', 'integer', (c) => c.notNull())
        .addColumn('timestamp_version', 'integer', (c) => c.notNull())
        // The signed documents, as served (JSON text).
        .addColumn('targets', 'text', (c) => c.notNull())
        .addColumn('snapshot', 'text', (c) => c.notNull())
        .addColumn('timestamp', 'text', (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
    },
  };
}
