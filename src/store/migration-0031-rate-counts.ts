/** 0031_rate_counts: abuse-limit counts shared by the replicas (server/abuse/). Released migrations are never edited. */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function rateCounts(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('rate_counts')
        .addColumn('key', binaryText, (c) => c.notNull())
        .addColumn('window_start', time, (c) => c.notNull())
        .addColumn('count', time, (c) => c.notNull())
        .addColumn('expires_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('rate_counts_pk', ['key', 'window_start'])
        .execute();
      await db.schema.createIndex('rate_counts_expiry').on('rate_counts').column('expires_at').execute();
    },
  };
}
