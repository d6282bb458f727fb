/** 0035_groups: named device groups, static (a list of ids) or dynamic (a saved filter). Released migrations are never edited. */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function groups(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('device_groups')
        .addColumn('id', binaryText, (c) => c.primaryKey())
        .addColumn('name', binaryText, (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        // Dynamic groups only: the filter expression, kept as written.
        .addColumn('filter', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('group_members')
        .addColumn('group_id', binaryText, (c) =>
          c.notNull().references('device_groups.id').onDelete('cascade'),
        )
        .addColumn('device_id', binaryText, (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'device_id'])
        .execute();
      // A device's groups (and removing a device's memberships) without a scan.
      await db.schema.createIndex('group_members_device').on('group_members').column('device_id').execute();
    },
  };
}
