/** Binary deltas between releases over Kysely, for both dialects. */
import type { Kysely } from 'kysely';
import type { DeltaTool } from '../../core/delta.js';
import type { Delta, DeltaStore, NewDelta } from '../delta-store.js';
import type { Database } from '../schema.js';

export class SqlDeltas implements DeltaStore {
  constructor(private readonly db: Kysely<Database>) {}

  async record(d: NewDelta): Promise<void> {
    await this.db
      .insertInto('deltas')
      .values({
        id: d.id,
        source_release_id: d.sourceReleaseId,
        target_release_id: d.targetReleaseId,
        tool: d.tool,
        size: d.size,
        sha256: d.sha256,
        manifest: d.manifest,
        signature: d.signature,
        key_id: d.keyId,
        build_ms: d.buildMs,
        created_at: d.createdAt,
      })
      .onConflict((oc) => oc.columns(['target_release_id', 'source_release_id', 'tool']).doNothing())
      .execute();
  }

  async toTarget(targetReleaseId: string): Promise<Delta[]> {
    const rows = await this.joined().where('d.target_release_id', '=', targetReleaseId).execute();
    return rows.map(rowToDelta).sort((a, b) => a.size - b.size || a.id.localeCompare(b.id));
  }

  async forDevice(targetReleaseId: string, sourceVersion: string): Promise<Delta | undefined> {
    const rows = await this.joined()
      .where('d.target_release_id', '=', targetReleaseId)
      .where('s.version', '=', sourceVersion)
      .execute();
    return rows.map(rowToDelta).sort((a, b) => a.size - b.size)[0];
  }

  async bySha256(sha256: string): Promise<Delta[]> {
    const rows = await this.joined().where('d.sha256', '=', sha256).execute();
    return rows.map(rowToDelta);
  }

  async versionsInRollout(rolloutId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('device_updates')
      .select('from_version')
      .distinct()
      .where('rollout_id', '=', rolloutId)
      .where('from_version', 'is not', null)
      .execute();
    return rows.map((r) => r.from_version as string).sort();
  }

  private joined() {
    return this.db
      .selectFrom('deltas as d')
      .innerJoin('releases as s', 's.id', 'd.source_release_id')
      .innerJoin('releases as t', 't.id', 'd.target_release_id')
      .selectAll('d')
      .select('s.version as source_version')
      .where('s.deleted_at', 'is', null)
      .where('t.deleted_at', 'is', null);
  }
}

type Row = Omit<Database['deltas'], never> & { source_version: string };

function rowToDelta(r: Row): Delta {
  return {
    id: r.id,
    sourceReleaseId: r.source_release_id,
    targetReleaseId: r.target_release_id,
    sourceVersion: r.source_version,
    tool: r.tool as DeltaTool,
    size: Number(r.size),
    sha256: r.sha256,
    manifest: r.manifest,
    signature: r.signature,
    keyId: r.key_id,
    buildMs: Number(r.build_ms),
    createdAt: Number(r.created_at),
  };
}
