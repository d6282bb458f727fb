/**
 * 0026_telemetry: device telemetry as a bounded series (raw samples, hourly aggregates, the latest value of each
 * metric for the filter language) and the latest inventory with its packages (docs/telemetry.md).
 * Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function telemetry(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const real = pg ? ('double precision' as const) : ('real' as const);
  // Ids, names and version keys must compare byte-wise in both databases, whatever the server's locale.
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('telemetry_samples')
        .addColumn('device_id', binaryText, (c) => c.notNull())
        .addColumn('name', binaryText, (c) => c.notNull())
        .addColumn('at', time, (c) => c.notNull())
        .addColumn('value', real, (c) => c.notNull())
        .addPrimaryKeyConstraint('telemetry_samples_pk', ['device_id', 'name', 'at'])
        .execute();
      await db.schema.createIndex('telemetry_samples_at').on('telemetry_samples').column('at').execute();
      await db.schema
        .createTable('telemetry_hourly')
        .addColumn('device_id', binaryText, (c) => c.notNull())
        .addColumn('name', binaryText, (c) => c.notNull())
        .addColumn('hour', time, (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('sum', real, (c) => c.notNull())
        .addColumn('min', real, (c) => c.notNull())
        .addColumn('max', real, (c) => c.notNull())
        .addPrimaryKeyConstraint('telemetry_hourly_pk', ['device_id', 'name', 'hour'])
        .execute();
      await db.schema.createIndex('telemetry_hourly_hour').on('telemetry_hourly').column('hour').execute();
      await db.schema
        .createTable('telemetry_latest')
        .addColumn('device_id', binaryText, (c) => c.notNull())
        .addColumn('name', binaryText, (c) => c.notNull())
        .addColumn('value', real, (c) => c.notNull())
        .addColumn('at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('telemetry_latest_pk', ['device_id', 'name'])
        .execute();
      // `telemetry.disk_free_pct < 10` reads a range of one metric's values.
      await db.schema
        .createIndex('telemetry_latest_name_value')
        .on('telemetry_latest')
        .columns(['name', 'value'])
        .execute();
      await db.schema
        .createTable('device_inventory')
        .addColumn('device_id', binaryText, (c) => c.primaryKey())
        .addColumn('os', 'text')
        .addColumn('kernel', 'text')
        .addColumn('interfaces', 'text', (c) => c.notNull())
        .addColumn('reported_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('device_inventory_os').on('device_inventory').column('os').execute();
      await db.schema
        .createTable('device_packages')
        .addColumn('device_id', binaryText, (c) => c.notNull())
        .addColumn('name', binaryText, (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('version_key', binaryText)
        .addPrimaryKeyConstraint('device_packages_pk', ['device_id', 'name'])
        .execute();
      await db.schema
        .createIndex('device_packages_name_key')
        .on('device_packages')
        .columns(['name', 'version_key'])
        .execute();
    },
  };
}
