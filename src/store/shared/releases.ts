/** Releases (a signed artifact: manifest, signature, blob hash) over Kysely, for both dialects. */
import type { Kysely, Selectable } from 'kysely';
import { FleetError } from '../../core/errors.js';
import type { ReleaseType } from '../../core/manifest.js';
import { versionKey } from '../../core/semver.js';
import { FINAL_STATES } from '../../core/update-state.js';
import type { Database, ReleasesTable } from '../schema.js';
import type { Release, ReleaseStore } from '../store.js';
import { insertEvents } from './events.js';

export function rowToRelease(row: Selectable<ReleasesTable>): Release {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    type: row.type as ReleaseType,
    hardware: JSON.parse(row.hardware) as string[],
    size: Number(row.size),
    sha256: row.sha256,
    manifest: row.manifest,
    signature: row.signature,
    keyId: row.key_id,
    allowDowngrade: Number(row.allow_downgrade) === 1,
    createdAt: Number(row.created_at),
  };
}

export class SqlReleases implements ReleaseStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(release: Release, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('releases')
        .select('id')
        .where('name', '=', release.name)
        .where('version', '=', release.version)
        .executeTakeFirst();
      if (existing) {
        throw new FleetError(
          'CONFLICT',
          `release ${release.name}@${release.version} exists already (${existing.id})`,
        );
      }
      await trx
        .insertInto('releases')
        .values({
          id: release.id,
          name: release.name,
          version: release.version,
          version_key: versionKey(release.version) ?? '',
          type: release.type,
          hardware: JSON.stringify(release.hardware),
          size: release.size,
          sha256: release.sha256,
          manifest: release.manifest,
          signature: release.signature,
          key_id: release.keyId,
          allow_downgrade: release.allowDowngrade ? 1 : 0,
          created_at: release.createdAt,
          deleted_at: null,
        })
        .execute();
      await insertEvents(trx, [
        {
          at: release.createdAt,
          type: 'release.created',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: {
            id: release.id,
            name: release.name,
            version: release.version,
            sha256: release.sha256,
            keyId: release.keyId,
          },
        },
      ]);
    });
  }

  async get(name: string, version: string): Promise<Release | undefined> {
    const row = await this.db
      .selectFrom('releases')
      .selectAll()
      .where('name', '=', name)
      .where('version', '=', version)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    return row && rowToRelease(row);
  }

  async getById(id: string): Promise<Release | undefined> {
    const row = await this.db.selectFrom('releases').selectAll().where('id', '=', id).executeTakeFirst();
    return row && rowToRelease(row);
  }

  async list(): Promise<Release[]> {
    const rows = await this.db
      .selectFrom('releases')
      .selectAll()
      .where('deleted_at', 'is', null)
      .orderBy('name')
      .orderBy('version_key', 'desc')
      .execute();
    return rows.map(rowToRelease);
  }

  async delete(id: string, at: number, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const release = await trx
        .selectFrom('releases')
        .selectAll()
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (!release) throw new FleetError('NOT_FOUND', `release ${id} does not exist`);
      const inUse = await trx
        .selectFrom('device_updates')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('release_id', '=', id)
        .where('state', 'not in', [...FINAL_STATES])
        .executeTakeFirstOrThrow();
      if (Number(inUse.n) > 0) {
        throw new FleetError(
          'CONFLICT',
          `release ${release.name}@${release.version} is in use by ${inUse.n} device update(s) in progress; cancel them first`,
        );
      }
      // Finished updates keep pointing at the release for their history: the row stays, marked deleted.
      await trx.updateTable('releases').set({ deleted_at: at }).where('id', '=', id).execute();
      await insertEvents(trx, [
        {
          at,
          type: 'release.deleted',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: { id, name: release.name, version: release.version },
        },
      ]);
    });
  }

  async blobInUse(sha256: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('releases')
      .select('id')
      .where('sha256', '=', sha256)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (row) return true;
    // A variant's bytes are kept while its release is.
    const variant = await this.db
      .selectFrom('release_variants as v')
      .innerJoin('releases as r', 'r.id', 'v.release_id')
      .select('v.release_id')
      .where('v.sha256', '=', sha256)
      .where('r.deleted_at', 'is', null)
      .executeTakeFirst();
    return variant !== undefined;
  }
}
