/**
 * 0032_release_variants: per-client files of a release (a `.swu` for SWUpdate, a `.mender` for mender-client),
 * so one release reaches every kind of device (docs/clients/). Their bytes are blobs, like a release's.
 * Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function releaseVariants(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  // Ids and hashes must compare byte-wise in both databases, whatever the server's locale.
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('release_variants')
        .addColumn('release_id', binaryText, (c) => c.notNull().references('releases.id'))
        .addColumn('client', 'text', (c) => c.notNull())
        .addColumn('size', time, (c) => c.notNull())
        .addColumn('sha256', binaryText, (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('release_variants_pk', ['release_id', 'client'])
        .execute();
      await db.schema
        .createIndex('release_variants_sha256')
        .on('release_variants')
        .column('sha256')
        .execute();
    },
  };
}
