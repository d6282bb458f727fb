/** 0030_agentless_delivery: how the server delivers to devices without an agent (docs/agentless.md). */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function agentlessDelivery(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      // One row per agentless device; its settings hold no secret (the SSH key lives encrypted in the data folder).
      await db.schema
        .createTable('device_delivery')
        .addColumn('device_id', binaryText, (c) => c.primaryKey().references('devices.id'))
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('settings', 'text', (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
    },
  };
}
