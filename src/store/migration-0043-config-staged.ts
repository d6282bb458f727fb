/**
 * 0043_config_staged: configuration versions set aside before they reach any device (docs/configuration.md,
 * "Staged versions"). `config_staged` holds at most one staged version per document, in the shape of
 * `config_documents`; `config_releases` the devices that version was released to, which resolve it in place of the
 * document's current version until it is promoted (then every device does) or dropped. Released migrations are
 * never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function configStaged(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('config_staged')
        .addColumn('name', binaryText, (c) => c.primaryKey())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('document', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('filter', 'text')
        .addColumn('device_id', binaryText)
        .addColumn('scope', 'text')
        .addColumn('staged_at', time, (c) => c.notNull())
        .addColumn('staged_by', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('config_releases')
        .addColumn('name', binaryText, (c) =>
          c.notNull().references('config_staged.name').onDelete('cascade'),
        )
        .addColumn('device_id', binaryText, (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('released_at', time, (c) => c.notNull())
        .addColumn('released_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('config_releases_pk', ['name', 'device_id'])
        .execute();
      await db.schema
        .createIndex('config_releases_device')
        .on('config_releases')
        .column('device_id')
        .execute();
    },
  };
}
