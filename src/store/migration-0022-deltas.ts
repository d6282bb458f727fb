/** 0022_deltas: the binary deltas built between releases (docs/delta-updates.md). Released migrations are never edited. */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function deltas(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  // Ids and hashes must compare byte-wise in both databases, whatever the server's locale.
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('deltas')
        .addColumn('id', binaryText, (c) => c.primaryKey())
        .addColumn('source_release_id', binaryText, (c) => c.notNull().references('releases.id'))
        .addColumn('target_release_id', binaryText, (c) => c.notNull().references('releases.id'))
        .addColumn('tool', 'text', (c) => c.notNull())
        .addColumn('size', time, (c) => c.notNull())
        .addColumn('sha256', binaryText, (c) => c.notNull())
        .addColumn('manifest', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('build_ms', time, (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('deltas_pair')
        .on('deltas')
        .columns(['target_release_id', 'source_release_id', 'tool'])
        .unique()
        .execute();
      await db.schema.createIndex('deltas_sha256').on('deltas').column('sha256').execute();
    },
  };
}
