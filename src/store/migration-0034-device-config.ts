/**
 * 0034_device_config: remote configuration (docs/configuration.md). `config_documents` holds the named, versioned
 * documents with where each applies (the fleet, a filter narrowed by the setter's scope, or one device);
 * `device_config` each device's resolved desired configuration (version and hash) next to what its agent last
 * reported, so drift is one comparison of two columns. Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function deviceConfig(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('config_documents')
        .addColumn('name', binaryText, (c) => c.primaryKey())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('document', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('filter', 'text')
        .addColumn('device_id', binaryText)
        .addColumn('scope', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('device_config')
        .addColumn('device_id', binaryText, (c) =>
          c.primaryKey().references('devices.id').onDelete('cascade'),
        )
        .addColumn('desired_version', 'text')
        .addColumn('desired_hash', 'text')
        .addColumn('desired_at', time)
        .addColumn('applied_version', 'text')
        .addColumn('applied_hash', 'text')
        .addColumn('applied_at', time)
        .addColumn('result', 'text')
        .addColumn('result_hash', 'text')
        .addColumn('output', 'text')
        .addColumn('reported_at', time)
        .execute();
    },
  };
}
