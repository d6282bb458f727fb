/**
 * 0040_connectivity_classes: heartbeat interval and offline/abandoned thresholds per class of devices
 * (docs/connectivity.md), and on each device the class it resolved to with that class's figures, so the derived
 * status reads its own row and no query joins the classes. Null columns: the server-wide thresholds.
 * Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function connectivityClasses(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('connectivity_classes')
        .addColumn('name', binaryText, (c) => c.primaryKey())
        // 'hardware' | 'tag' | 'group'; match_key is the tag's key, null for the others.
        .addColumn('match_kind', 'text', (c) => c.notNull())
        .addColumn('match_key', 'text')
        .addColumn('match_value', 'text', (c) => c.notNull())
        .addColumn('heartbeat_interval_ms', time, (c) => c.notNull())
        .addColumn('offline_after_ms', time, (c) => c.notNull())
        .addColumn('abandoned_after_ms', time, (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull())
        .addColumn('updated_by', 'text')
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema.alterTable('devices').addColumn('connectivity_class', 'text').execute();
      await db.schema.alterTable('devices').addColumn('heartbeat_interval_ms', time).execute();
      await db.schema.alterTable('devices').addColumn('offline_after_ms', time).execute();
      await db.schema.alterTable('devices').addColumn('abandoned_after_ms', time).execute();
    },
  };
}
