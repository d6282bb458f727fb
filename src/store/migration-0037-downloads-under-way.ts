/**
 * 0037_downloads_under_way: the downloads under way fleet-wide (updates granted and not yet downloaded), counted at
 * every grant while an egress cap is set (core/rollout/egress-slots.ts). A partial index holds only those few
 * rows, so the count never scans the fleet's updates. Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function downloadsUnderWay(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .createIndex('device_updates_downloading')
        .on('device_updates')
        .columns(['purpose', 'state'])
        .where(sql<boolean>`state in ('notified', 'downloading')`)
        .execute();
    },
  };
}
