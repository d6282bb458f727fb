/**
 * 0027_device_health: what the health gate reads of each device (docs/health-gates.md): the reboots and
 * application crashes its agent reported since its running release was installed. Released migrations are
 * never edited.
 */
import type { Kysely, Migration } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function deviceHealth(_dialect: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      // Null until the device's agent reports them: an older agent is judged on heartbeats and version alone.
      await db.schema.alterTable('devices').addColumn('reboots', 'integer').execute();
      await db.schema.alterTable('devices').addColumn('app_crashes', 'integer').execute();
    },
  };
}
