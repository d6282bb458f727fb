/**
 * The director's per-device metadata (`director_metadata`, one row per device) in shared SQL. A save is a
 * compare-and-set on the timestamp version, so two replicas signing for the same device at once never write a
 * version twice or go back: the one that loses reads what the other stored.
 */
import type { Kysely } from 'kysely';
import type { DirectorMetadata, DirectorStore } from '../director-store.js';
import type { Database, DirectorMetadataTable } from '../schema.js';
import type { Release } from '../store.js';
import { rowToRelease } from './releases.js';
import { OPEN_UPDATE_STATES } from './updates.js';

const rowToMetadata = (r: DirectorMetadataTable): DirectorMetadata => ({
  deviceId: r.device_id,
  targetsVersion: Number(r.targets_version),
  snapshotVersion: Number(r.snapshot_version),
  timestampVersion: Number(r.timestamp_version),
  targets: r.targets,
  snapshot: r.snapshot,
  timestamp: r.timestamp,
  updatedAt: Number(r.updated_at),
});

export class SqlDirectorMetadata implements DirectorStore {
  constructor(private readonly db: Kysely<Database>) {}

  async get(deviceId: string): Promise<DirectorMetadata | undefined> {
    const row = await this.db
      .selectFrom('director_metadata')
      .selectAll()
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return row && rowToMetadata(row);
  }

  async save(m: DirectorMetadata, previous: number | undefined): Promise<boolean> {
    const row: DirectorMetadataTable = {
      device_id: m.deviceId,
      targets_version: m.targetsVersion,
      snapshot_version: m.snapshotVersion,
      timestamp_version: m.timestampVersion,
      targets: m.targets,
      snapshot: m.snapshot,
      timestamp: m.timestamp,
      updated_at: m.updatedAt,
    };
    if (previous === undefined) {
      const result = await this.db
        .insertInto('director_metadata')
        .values(row)
        .onConflict((oc) => oc.column('device_id').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    }
    const { device_id: _, ...changes } = row;
    const result = await this.db
      .updateTable('director_metadata')
      .set(changes)
      .where('device_id', '=', m.deviceId)
      .where('timestamp_version', '=', previous)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async imagesFor(deviceId: string): Promise<Release[]> {
    const rows = await this.db
      .selectFrom('device_updates as u')
      .innerJoin('releases as r', 'r.id', 'u.release_id')
      .selectAll('r')
      .where('u.device_id', '=', deviceId)
      .where('u.state', 'in', OPEN_UPDATE_STATES)
      .orderBy('r.id')
      .execute();
    return rows.map(rowToRelease);
  }
}
