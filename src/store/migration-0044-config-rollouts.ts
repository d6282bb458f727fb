/**
 * 0044_config_rollouts: a staged configuration version rolled out with a strategy (docs/configuration.md,
 * "Rolling a staged version out with a strategy"). One row per rollout, kept when it ends; at most one active
 * (running, paused or halted) per document, which a partial unique index holds across replicas. The lease columns
 * name the replica whose driver steps the rollout. `final_counts` keeps each phase's counts as the rollout ended:
 * its releases go with the staged version when that is promoted or dropped. Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function configRollouts(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  const real = pg ? ('double precision' as const) : ('real' as const);
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('config_rollouts')
        .addColumn('id', binaryText, (c) => c.primaryKey())
        .addColumn('name', binaryText, (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('phases', 'text', (c) => c.notNull())
        .addColumn('soak_ms', time, (c) => c.notNull())
        .addColumn('max_failure_rate', real, (c) => c.notNull())
        .addColumn('promote', 'integer', (c) => c.notNull())
        .addColumn('scope', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('phase', 'integer', (c) => c.notNull())
        .addColumn('phase_starts', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('final_counts', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', time)
        .execute();
      await db.schema
        .createIndex('config_rollouts_name')
        .on('config_rollouts')
        .columns(['name', 'created_at'])
        .execute();
      await sql`create unique index config_rollouts_active on config_rollouts (name) where state in ('running', 'paused', 'halted')`.execute(
        db,
      );
    },
  };
}
