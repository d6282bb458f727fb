/** Release variants (a release's file for one update client) over Kysely, for both dialects. */
import type { Kysely } from 'kysely';
import { FleetError } from '../../core/errors.js';
import type { VariantClient } from '../../core/release-variants.js';
import type { Database } from '../schema.js';
import type { ReleaseVariant, ReleaseVariantStore } from '../variant-store.js';
import { insertEvents } from './events.js';

export class SqlReleaseVariants implements ReleaseVariantStore {
  constructor(private readonly db: Kysely<Database>) {}

  async add(v: ReleaseVariant, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const release = await trx
        .selectFrom('releases')
        .select(['name', 'version'])
        .where('id', '=', v.releaseId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (!release) throw new FleetError('NOT_FOUND', `release ${v.releaseId} does not exist`);
      const existing = await trx
        .selectFrom('release_variants')
        .select('sha256')
        .where('release_id', '=', v.releaseId)
        .where('client', '=', v.client)
        .executeTakeFirst();
      if (existing) {
        throw new FleetError(
          'CONFLICT',
          `release ${release.name}@${release.version} has a ${v.client} variant already (sha256 ${existing.sha256})`,
        );
      }
      await trx
        .insertInto('release_variants')
        .values({
          release_id: v.releaseId,
          client: v.client,
          size: v.size,
          sha256: v.sha256,
          created_at: v.createdAt,
        })
        .execute();
      await insertEvents(trx, [
        {
          at: v.createdAt,
          type: 'release.variant_added',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: {
            id: v.releaseId,
            name: release.name,
            version: release.version,
            client: v.client,
            sha256: v.sha256,
            size: v.size,
          },
        },
      ]);
    });
  }

  async of(releaseIds: readonly string[]): Promise<ReleaseVariant[]> {
    if (releaseIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('release_variants')
      .selectAll()
      .where('release_id', 'in', [...releaseIds])
      .orderBy('release_id')
      .orderBy('client')
      .execute();
    return rows.map((r) => ({
      releaseId: r.release_id,
      client: r.client as VariantClient,
      size: Number(r.size),
      sha256: r.sha256,
      createdAt: Number(r.created_at),
    }));
  }
}
