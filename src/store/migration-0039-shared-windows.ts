/**
 * 0039_shared_windows: maintenance windows set on a group or on a tag value (a customer's closing hours), which
 * devices without windows of their own take in rollouts with `window: device_defined` (docs/rollouts.md).
 * A group's windows go with the group. Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function sharedWindows(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('group_windows')
        .addColumn('group_id', binaryText, (c) =>
          c.primaryKey().references('device_groups.id').onDelete('cascade'),
        )
        // JSON array of window documents (the spec's `window` form).
        .addColumn('windows', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text')
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tag_windows')
        .addColumn('tag_key', binaryText, (c) => c.notNull())
        .addColumn('tag_value', binaryText, (c) => c.notNull())
        .addColumn('windows', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text')
        .addColumn('updated_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('tag_windows_pk', ['tag_key', 'tag_value'])
        .execute();
    },
  };
}
