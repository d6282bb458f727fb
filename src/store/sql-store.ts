/**
 * The Store port implemented once over Kysely. The dialect folders (sqlite/, postgres/) only open the
 * connection and tune it; every query here is written in the subset both databases share.
 */
import { type Expression, type ExpressionBuilder, type Kysely, type SqlBool, sql } from 'kysely';
import type { Device, DeviceRecord, DeviceStatus } from '../core/device.js';
import { FleetError } from '../core/errors.js';
import { type FilterNode, matchesFilter, parseFilter } from '../core/filter/index.js';
import type { UpdateState } from '../core/update-state.js';
import { byteOrder } from './byte-order.js';
import { asCallerError } from './db-errors.js';
import {
  type DeviceRow,
  fleetImportedEvent,
  newDeviceRow,
  recordColumns,
  rowToDevice,
} from './device-row.js';
import { decodeCursor, encodeCursor, sortExpression } from './device-sort.js';
import { compileFilter } from './filter-sql.js';
import { type HeartbeatRow, heartbeatEffects, statusEvent, statusSweeps } from './heartbeat-effects.js';
import type { Dialect } from './migrations.js';
import type { Database } from './schema.js';
import { SqlEventRetention } from './sql-event-retention.js';
import { type Db, INSERT_CHUNK, insertEvents } from './sql-events.js';
import { SqlReleases } from './sql-releases.js';
import { SqlRollouts } from './sql-rollouts.js';
import {
  insertApiToken,
  listEnrollmentTokens,
  replaceApiToken,
  revokeEnrollmentToken,
} from './sql-tokens.js';
import { OFFERABLE_STATES, OPEN_UPDATE_STATES, SqlUpdates } from './sql-updates.js';
import { SqlWebhooks } from './sql-webhooks.js';
import type {
  ApiToken,
  DevicePage,
  DeviceQuery,
  Enrollment,
  EnrollmentToken,
  EnrollmentTokenInfo,
  EventQuery,
  FleetSnapshot,
  FleetStats,
  HeartbeatOutcome,
  ImportResult,
  NewEvent,
  PresentedHeartbeat,
  StatusTransition,
  Store,
  StoredEvent,
  TimeContext,
} from './store.js';
import { transact } from './transact.js';
import { updateEvent } from './update-effects.js';

type DeviceEb = ExpressionBuilder<Database, 'devices'>;

/** What a heartbeat reads of its device (see heartbeat-effects.ts). */
const HEARTBEAT_COLUMNS = [
  'credential_hash',
  'recorded_status',
  'last_seen',
  'decommissioned_at',
  'firmware_version',
] as const;

/** Devices moved per sweep transaction, so a sweep never holds the write lock for long. */
export const SWEEP_CHUNK = 5_000;

/** Names the heartbeats of a failed write: the device when it is one (group commit writes it alone). */
export function heartbeatsNamed(batch: readonly PresentedHeartbeat[]): string {
  return batch.length === 1 ? `the heartbeat of ${batch[0]!.heartbeat.deviceId}` : 'a heartbeat of the batch';
}

export class SqlStore implements Store {
  readonly releases: SqlReleases;
  readonly updates: SqlUpdates;
  readonly rollouts: SqlRollouts;
  readonly webhooks: SqlWebhooks;
  readonly retention: SqlEventRetention;

  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    /** A dialect's own rollout and update stores (SQLite's write natively); the portable ones otherwise. */
    own: { rollouts?: SqlRollouts; updates?: SqlUpdates } = {},
  ) {
    const rollouts = own.rollouts;
    this.releases = new SqlReleases(db);
    this.updates = own.updates ?? new SqlUpdates(db, dialect);
    this.rollouts = rollouts ?? new SqlRollouts(db, dialect);
    this.webhooks = new SqlWebhooks(db);
    this.retention = new SqlEventRetention(db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  private where(filter: FilterNode | undefined, ctx: TimeContext) {
    return (eb: DeviceEb): Expression<SqlBool> => (filter ? compileFilter(eb, filter, ctx) : eb.lit(true));
  }

  private async replaceTags(db: Db, deviceIds: string[], tagsById: Map<string, Record<string, string>>) {
    if (deviceIds.length === 0) return;
    await db.deleteFrom('device_tags').where('device_id', 'in', deviceIds).execute();
    const rows = deviceIds.flatMap((id) =>
      Object.entries(tagsById.get(id) ?? {}).map(([key, value]) => ({ device_id: id, key, value })),
    );
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await db
        .insertInto('device_tags')
        .values(rows.slice(i, i + INSERT_CHUNK))
        .execute();
    }
  }

  async importDevices(records: DeviceRecord[], ctx: TimeContext, actor: string): Promise<ImportResult> {
    return this.db.transaction().execute(async (trx) => {
      let created = 0;
      let updated = 0;
      for (let i = 0; i < records.length; i += INSERT_CHUNK) {
        const chunk = records.slice(i, i + INSERT_CHUNK);
        const existing = new Set(
          (
            await trx
              .selectFrom('devices')
              .select('id')
              .where(
                'id',
                'in',
                chunk.map((r) => r.id),
              )
              .execute()
          ).map((r) => r.id),
        );
        const fresh = chunk.filter((r) => !existing.has(r.id));
        if (fresh.length > 0) {
          await trx
            .insertInto('devices')
            .values(fresh.map((r) => newDeviceRow(r, ctx)))
            .execute();
        }
        for (const record of chunk.filter((r) => existing.has(r.id))) {
          await trx
            .updateTable('devices')
            .set({ ...recordColumns(record), updated_at: ctx.now })
            .where('id', '=', record.id)
            .execute();
        }
        const tagged = chunk.filter((r) => r.tags !== undefined);
        await this.replaceTags(
          trx,
          tagged.map((r) => r.id),
          new Map(tagged.map((r) => [r.id, r.tags!])),
        );
        await insertEvents(
          trx,
          fresh.map((r) => ({
            at: ctx.now,
            type: 'device.registered',
            deviceId: r.id,
            rolloutId: null,
            actor,
            reason: 'import',
            data: {},
          })),
        );
        created += fresh.length;
        updated += chunk.length - fresh.length;
      }
      await insertEvents(trx, [fleetImportedEvent({ created, updated }, ctx.now, actor)]);
      return { created, updated };
    });
  }

  async getDevice(id: string, ctx: TimeContext): Promise<Device | undefined> {
    const row = await this.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
    return row && rowToDevice(row, ctx);
  }

  async listDevices(query: DeviceQuery): Promise<DevicePage> {
    const sort = query.sort ?? 'id';
    const desc = query.descending ?? false;
    const key = sortExpression(sort);
    let q = this.db.selectFrom('devices').selectAll().where(this.where(query.filter, query));
    if (query.cursor) {
      const [value, id] = decodeCursor(query.cursor);
      q = q.where((eb) => {
        const col = key(eb);
        const cmp = desc ? '<' : '>';
        return sort === 'id'
          ? eb('id', cmp, id)
          : eb.or([eb(col, cmp, value), eb.and([eb(col, '=', value), eb('id', cmp, id)])]);
      });
    }
    q = q.orderBy(key, desc ? 'desc' : 'asc');
    if (sort !== 'id') q = q.orderBy('id', desc ? 'desc' : 'asc');
    const rows = await q.limit(query.limit + 1).execute();
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      devices: page.map((r) => rowToDevice(r, query)),
      nextCursor: rows.length > query.limit && last ? encodeCursor(sort, last) : null,
    };
  }

  async countDevices(filter: FilterNode | undefined, ctx: TimeContext): Promise<number> {
    const row = await this.db
      .selectFrom('devices')
      .select((eb) => eb.fn.countAll().as('n'))
      .where(this.where(filter, ctx))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async decommissionDevice(id: string, ctx: TimeContext, actor: string): Promise<Device> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new FleetError('DEVICE_NOT_FOUND', `device ${id} is not registered`);
      if (row.decommissioned_at !== null) {
        throw new FleetError('CONFLICT', `device ${id} was already decommissioned`);
      }
      const from = rowToDevice(row, ctx).status;
      await trx
        .updateTable('devices')
        .set({
          decommissioned_at: ctx.now,
          credential_hash: null,
          recorded_status: 'decommissioned',
          updated_at: ctx.now,
        })
        .where('id', '=', id)
        .execute();
      // A retired device never reports again: its open updates end here, or they would stay open forever
      // (holding a download slot, keeping their release from being deleted). That includes installs under
      // way, which an operator cannot cancel on a live device.
      let open = trx
        .selectFrom('device_updates')
        .select(['id', 'state', 'rollout_id'])
        .where('device_id', '=', id)
        .where('state', 'in', OPEN_UPDATE_STATES);
      if (this.dialect === 'postgres') open = open.orderBy('id').forUpdate();
      const updates = await open.execute();
      if (updates.length > 0) {
        await trx
          .updateTable('device_updates')
          .set({
            state: 'cancelled',
            error: 'device decommissioned',
            updated_at: ctx.now,
            finished_at: ctx.now,
          })
          .where(
            'id',
            'in',
            updates.map((u) => u.id),
          )
          .execute();
      }
      await insertEvents(trx, [
        { ...statusEvent(id, from, 'decommissioned', ctx.now, 'decommissioned by operator'), actor },
        ...updates.map((u) =>
          updateEvent(
            { id: u.id, deviceId: id, rolloutId: u.rollout_id },
            u.state as UpdateState,
            'cancelled',
            ctx.now,
            actor,
            'device decommissioned',
          ),
        ),
      ]);
      return rowToDevice({ ...row, decommissioned_at: ctx.now, credential_hash: null }, ctx);
    });
  }

  async setCredential(id: string, credentialHash: string, ctx: TimeContext, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('devices')
        .select(['decommissioned_at'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new FleetError('DEVICE_NOT_FOUND', `device ${id} is not registered`);
      if (row.decommissioned_at !== null) {
        throw new FleetError('DEVICE_DECOMMISSIONED', `device ${id} is decommissioned`);
      }
      await trx
        .updateTable('devices')
        .set({ credential_hash: credentialHash, updated_at: ctx.now })
        .where('id', '=', id)
        .execute();
      await insertEvents(trx, [
        {
          at: ctx.now,
          type: 'device.credential_issued',
          deviceId: id,
          rolloutId: null,
          actor,
          reason: null,
          data: {},
        },
      ]);
    });
  }

  async setCredentials(
    credentials: ReadonlyArray<{ id: string; credentialHash: string }>,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ set: number; refused: string[] }> {
    return this.db.transaction().execute(async (trx) => {
      const refused: string[] = [];
      const events: NewEvent[] = [];
      for (let i = 0; i < credentials.length; i += INSERT_CHUNK) {
        const chunk = credentials.slice(i, i + INSERT_CHUNK);
        const active = new Set(
          (
            await trx
              .selectFrom('devices')
              .select('id')
              .where(
                'id',
                'in',
                chunk.map((c) => c.id),
              )
              .where('decommissioned_at', 'is', null)
              .execute()
          ).map((r) => r.id),
        );
        for (const c of chunk) {
          if (!active.has(c.id)) {
            refused.push(c.id);
            continue;
          }
          await trx
            .updateTable('devices')
            .set({ credential_hash: c.credentialHash, updated_at: ctx.now })
            .where('id', '=', c.id)
            .execute();
          events.push({
            at: ctx.now,
            type: 'device.credential_issued',
            deviceId: c.id,
            rolloutId: null,
            actor,
            reason: null,
            data: {},
          });
        }
      }
      await insertEvents(trx, events);
      return { set: credentials.length - refused.length, refused };
    });
  }

  async credentialHash(id: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('devices')
      .select(['credential_hash', 'decommissioned_at'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row || row.decommissioned_at !== null) return undefined;
    return row.credential_hash ?? undefined;
  }

  async enroll(enrollment: Enrollment, ctx: TimeContext): Promise<Device> {
    return this.db.transaction().execute(async (trx) => {
      const token = await trx
        .selectFrom('enrollment_tokens')
        .selectAll()
        .where('token_hash', '=', enrollment.tokenHash)
        .executeTakeFirst();
      const usable =
        token &&
        token.revoked_at === null &&
        (token.expires_at === null || Number(token.expires_at) > ctx.now) &&
        (token.uses_left === null || token.uses_left > 0);
      if (!token || !usable) {
        throw new FleetError(
          'ENROLLMENT_INVALID',
          'the enrollment token is unknown, expired, revoked or used up',
        );
      }
      const record = enrollment.device;
      const existing = await trx
        .selectFrom('devices')
        .selectAll()
        .where('id', '=', record.id)
        .executeTakeFirst();
      const tokenTags = JSON.parse(token.tags) as Record<string, string>;
      let row: DeviceRow;
      if (existing) {
        if (existing.decommissioned_at !== null) {
          throw new FleetError('DEVICE_DECOMMISSIONED', `device ${record.id} is decommissioned`);
        }
        if (existing.credential_hash !== null) {
          throw new FleetError(
            'DEVICE_EXISTS',
            `device ${record.id} is already enrolled; an operator can issue it a new credential`,
          );
        }
        // Whoever holds a token must not take over any pre-registered device: only those its filter names.
        const claim = token.claim_filter === null ? null : parseFilter(token.claim_filter);
        if (claim === null || !matchesFilter(claim, rowToDevice(existing, ctx), ctx)) {
          throw new FleetError(
            'DEVICE_EXISTS',
            `device ${record.id} is pre-registered and this enrollment token may not claim it; ` +
              'an operator can issue it a credential (`fleetd devices credential`) or create a token with --claim',
          );
        }
        // A pre-registered (imported) device claims its registry entry; registry facts win over the device's.
        const fill: DeviceRecord = { id: record.id };
        if (existing.hardware_type === null) fill.hardwareType = record.hardwareType ?? null;
        if (existing.firmware_version === null) fill.firmwareVersion = record.firmwareVersion ?? null;
        row = {
          ...existing,
          ...recordColumns(fill),
          credential_hash: enrollment.credentialHash,
          updated_at: ctx.now,
        };
        await trx.updateTable('devices').set(row).where('id', '=', record.id).execute();
      } else {
        const tags = { ...tokenTags, ...(record.tags ?? {}) };
        row = { ...newDeviceRow({ ...record, tags }, ctx), credential_hash: enrollment.credentialHash };
        await trx
          .insertInto('devices')
          .values(row)
          .execute()
          .catch((error: unknown) => {
            // Another enrollment of the same new id committed first.
            if (isUniqueViolation(error)) {
              throw new FleetError('DEVICE_EXISTS', `device ${record.id} is already enrolled`);
            }
            throw error;
          });
        await this.replaceTags(trx, [record.id], new Map([[record.id, tags]]));
      }
      if (token.uses_left !== null) {
        // Decrement in the database, guarded: under PostgreSQL's READ COMMITTED two enrollments may both
        // have read the last use; the second one's UPDATE sees the first one's and matches no row.
        const used = await trx
          .updateTable('enrollment_tokens')
          .set((eb) => ({ uses_left: eb('uses_left', '-', 1) }))
          .where('id', '=', token.id)
          .where('uses_left', '>', 0)
          .executeTakeFirst();
        if (used.numUpdatedRows === 0n) {
          throw new FleetError(
            'ENROLLMENT_INVALID',
            'the enrollment token is unknown, expired, revoked or used up',
          );
        }
      }
      await insertEvents(trx, [
        {
          at: ctx.now,
          type: 'device.enrolled',
          deviceId: record.id,
          rolloutId: null,
          actor: `enrollment:${token.id}`,
          reason: existing ? 'claimed a registered device' : 'self-registration',
          data: {},
        },
      ]);
      return rowToDevice(row, ctx);
    });
  }

  async recordHeartbeats(batch: PresentedHeartbeat[], ctx: TimeContext): Promise<HeartbeatOutcome[]> {
    return transact(this.db, async (trx) => {
      const locked = this.dialect === 'postgres' ? await this.lockHeartbeatRows(trx, batch) : undefined;
      const outcomes: HeartbeatOutcome[] = [];
      const events: NewEvent[] = [];
      for (const presented of batch) {
        const id = presented.heartbeat.deviceId;
        const row = locked
          ? locked.rows.get(id)
          : await trx.selectFrom('devices').select(HEARTBEAT_COLUMNS).where('id', '=', id).executeTakeFirst();
        const open = locked
          ? locked.open.has(id)
          : (await trx
              .selectFrom('device_updates')
              .select('id')
              .where('device_id', '=', id)
              .where('state', 'in', OFFERABLE_STATES)
              .limit(1)
              .executeTakeFirst()) !== undefined;
        const effects = heartbeatEffects(row, presented, open, ctx);
        if (effects.outcome.ok) {
          await trx.updateTable('devices').set(effects.set).where('id', '=', id).execute();
          events.push(...effects.events);
          // The same device twice in a batch: the second heartbeat sees the first one's write.
          if (locked && row) locked.rows.set(id, { ...row, ...effects.set } as HeartbeatRow);
        }
        outcomes.push(effects.outcome);
      }
      await insertEvents(trx, events);
      return outcomes;
    }).catch((error: unknown) => {
      throw asCallerError(error, heartbeatsNamed(batch));
    });
  }

  /**
   * PostgreSQL: the batch's device rows, read under their locks, taken in id order so batches never deadlock
   * (two heartbeats of one device on two replicas, or a heartbeat and a sweep, would otherwise both read the
   * old status and both record the same transition); and which of them have updates open. Two queries a
   * chunk instead of two a heartbeat: every round trip to a database server counts.
   */
  private async lockHeartbeatRows(trx: Db, batch: PresentedHeartbeat[]) {
    const rows = new Map<string, HeartbeatRow>();
    const open = new Set<string>();
    const ids = [...new Set(batch.map((b) => b.heartbeat.deviceId))].sort();
    for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
      const chunk = ids.slice(i, i + INSERT_CHUNK);
      const found = await trx
        .selectFrom('devices')
        .select(['id', ...HEARTBEAT_COLUMNS])
        .where('id', 'in', chunk)
        .orderBy('id')
        .forUpdate()
        .execute();
      for (const { id, ...row } of found) rows.set(id, row);
      const busy = await trx
        .selectFrom('device_updates')
        .select('device_id')
        .distinct()
        .where('device_id', 'in', chunk)
        .where('state', 'in', OFFERABLE_STATES)
        .execute();
      for (const b of busy) open.add(b.device_id);
    }
    return { rows, open };
  }

  async sweepStatuses(ctx: TimeContext, since?: number): Promise<StatusTransition[]> {
    const transitions: StatusTransition[] = [];
    for (const move of statusSweeps(ctx.thresholds)) {
      for (;;) {
        const { selected, moved } = await this.db.transaction().execute(async (trx) => {
          const silent = (eb: DeviceEb) =>
            eb.and([
              eb('last_seen', '<', ctx.now - move.silentMs),
              eb('recorded_status', 'in', move.from),
              eb('decommissioned_at', 'is', null),
            ]);
          let query = trx
            .selectFrom('devices')
            .select(['id', 'recorded_status'])
            .where(silent)
            // The same devices, in the same order, whichever database answers.
            .orderBy('id');
          // Devices silent for longer were handled by the previous sweep: only the newly silent are looked at.
          if (since !== undefined) query = query.where('last_seen', '>=', since - move.silentMs);
          // Several replicas sweep: on PostgreSQL each takes the rows nobody holds. A row locked by another
          // sweep is being recorded by it, one locked by a heartbeat is coming online: neither is ours to move,
          // and waiting for them could deadlock.
          if (this.dialect === 'postgres') query = query.forUpdate().skipLocked();
          const rows = await query.limit(SWEEP_CHUNK).execute();
          if (rows.length === 0) return { selected: 0, moved: [] };
          // Checked again as the rows are written: under PostgreSQL's READ COMMITTED a heartbeat may have
          // committed since the SELECT, and that device is not silent any more.
          const updated = await trx
            .updateTable('devices')
            .set({ recorded_status: move.to })
            .where(
              'id',
              'in',
              rows.map((r) => r.id),
            )
            .where(silent)
            .returning('id')
            .execute();
          const ids = new Set(updated.map((r) => r.id));
          const found = rows
            .filter((r) => ids.has(r.id))
            .map((r) => ({ deviceId: r.id, from: r.recorded_status as DeviceStatus, to: move.to }));
          await insertEvents(
            trx,
            found.map((t) => statusEvent(t.deviceId, t.from, t.to, ctx.now, move.reason)),
          );
          return { selected: rows.length, moved: found };
        });
        transitions.push(...moved);
        if (selected < SWEEP_CHUNK) break;
      }
    }
    return transitions;
  }

  /** Counts by status (derived at `ctx.now`) and of silent devices, in one pass. */
  private async statusCounts(
    where: (eb: DeviceEb) => Expression<SqlBool>,
    ctx: TimeContext,
    db: Db = this.db,
  ) {
    const onlineSince = ctx.now - ctx.thresholds.offlineAfterMs;
    const abandonedBefore = ctx.now - ctx.thresholds.abandonedAfterMs;
    const counts = await db
      .selectFrom('devices')
      .where(where)
      .select((eb) => {
        const active = eb('decommissioned_at', 'is', null);
        const count = (cond: Expression<SqlBool>) =>
          eb.fn.sum<number>(eb.case().when(cond).then(1).else(0).end());
        return [
          eb.fn.countAll<number>().as('total'),
          count(eb('decommissioned_at', 'is not', null)).as('decommissioned'),
          count(eb.and([active, eb('last_seen', 'is', null)])).as('unknown'),
          count(eb.and([active, eb('last_seen', '>=', onlineSince)])).as('online'),
          count(eb.and([active, eb('last_seen', '<', abandonedBefore)])).as('abandoned'),
          count(eb.and([active, eb('last_seen', '<', ctx.now - 86_400_000)])).as('over24h'),
          count(eb.and([active, eb('last_seen', '<', ctx.now - 30 * 86_400_000)])).as('over30d'),
        ];
      })
      .executeTakeFirstOrThrow();
    const n = (v: unknown) => Number(v ?? 0);
    const total = n(counts.total);
    const known = n(counts.decommissioned) + n(counts.unknown) + n(counts.online) + n(counts.abandoned);
    const byStatus: Record<DeviceStatus, number> = {
      online: n(counts.online),
      offline: total - known,
      abandoned: n(counts.abandoned),
      unknown: n(counts.unknown),
      decommissioned: n(counts.decommissioned),
    };
    return { total, byStatus, silent: { over24h: n(counts.over24h), over30d: n(counts.over30d) } };
  }

  recordFleetSnapshot(ctx: TimeContext): Promise<FleetSnapshot>;
  recordFleetSnapshot(ctx: TimeContext, minGapMs: number): Promise<FleetSnapshot | undefined>;
  async recordFleetSnapshot(ctx: TimeContext, minGapMs?: number): Promise<FleetSnapshot | undefined> {
    return this.db.transaction().execute(async (trx) => {
      if (minGapMs !== undefined) {
        // Replicas taking a snapshot at the same moment queue here, so the second one sees the first's.
        if (this.dialect === 'postgres') {
          await sql`lock table fleet_snapshots in share row exclusive mode`.execute(trx);
        }
        const recent = await trx
          .selectFrom('fleet_snapshots')
          .select('at')
          .where('at', '>', ctx.now - minGapMs)
          .executeTakeFirst();
        if (recent) return undefined;
      }
      const { total, byStatus } = await this.statusCounts(this.where(undefined, ctx), ctx, trx);
      await trx
        .insertInto('fleet_snapshots')
        .values({ at: ctx.now, total, ...byStatus })
        .onConflict((oc) => oc.column('at').doNothing())
        .execute();
      return { at: ctx.now, total, byStatus };
    });
  }

  async fleetHistory(since: number, until: number): Promise<FleetSnapshot[]> {
    const rows = await this.db
      .selectFrom('fleet_snapshots')
      .selectAll()
      .where('at', '>=', since)
      .where('at', '<=', until)
      .orderBy('at')
      .limit(10_000)
      .execute();
    return rows.map((r) => ({
      at: Number(r.at),
      total: Number(r.total),
      byStatus: {
        online: Number(r.online),
        offline: Number(r.offline),
        abandoned: Number(r.abandoned),
        unknown: Number(r.unknown),
        decommissioned: Number(r.decommissioned),
      },
    }));
  }

  async fleetStats(
    filter: FilterNode | undefined,
    tagKeys: string[] | undefined,
    ctx: TimeContext,
  ): Promise<FleetStats> {
    const where = this.where(filter, ctx);
    const { total, byStatus, silent } = await this.statusCounts(where, ctx);
    const n = (v: unknown) => Number(v ?? 0);
    const active = (eb: DeviceEb) => eb.and([where(eb), eb('decommissioned_at', 'is', null)]);

    const firmware = await this.db
      .selectFrom('devices')
      .where(active)
      .select((eb) => [
        'firmware_version',
        eb.fn.max('firmware_key').as('key'),
        eb.fn.countAll<number>().as('n'),
      ])
      .groupBy('firmware_version')
      .execute();
    // Highest version first; versions that do not parse last. Equal keys (2.2 and 2.2.0) and groups without
    // a key come back in no particular order from the database: put them in one, the version's text.
    firmware.sort(
      (a, b) =>
        byteOrder(b.key ?? '', a.key ?? '') ||
        (a.firmware_version === null ? 1 : 0) - (b.firmware_version === null ? 1 : 0) ||
        byteOrder(a.firmware_version ?? '', b.firmware_version ?? ''),
    );

    const hardware = await this.db
      .selectFrom('devices')
      .where(active)
      .select((eb) => ['hardware_type', eb.fn.countAll<number>().as('n')])
      .groupBy('hardware_type')
      .execute();
    // No hardware type first (where SQLite puts NULL, and PostgreSQL does not), then byte-wise.
    hardware.sort(
      (a, b) =>
        (a.hardware_type === null ? 0 : 1) - (b.hardware_type === null ? 0 : 1) ||
        byteOrder(a.hardware_type ?? '', b.hardware_type ?? ''),
    );

    let tagQuery = this.db
      .selectFrom('device_tags')
      .select((eb) => ['key', 'value', eb.fn.countAll<number>().as('n')])
      .where('device_id', 'in', (eb) => eb.selectFrom('devices').select('id').where(active))
      .groupBy(['key', 'value'])
      .orderBy('key')
      .orderBy('value');
    if (tagKeys && tagKeys.length > 0) tagQuery = tagQuery.where('key', 'in', tagKeys);
    const tags: Record<string, Record<string, number>> = {};
    for (const row of await tagQuery.execute()) {
      tags[row.key] ??= {};
      tags[row.key]![row.value] = n(row.n);
    }

    return {
      total,
      byStatus,
      firmware: firmware.map((r) => ({ version: r.firmware_version, count: n(r.n) })),
      hardware: hardware.map((r) => ({ hardwareType: r.hardware_type, count: n(r.n) })),
      tags,
      silent,
    };
  }

  async appendEvents(events: NewEvent[]): Promise<void> {
    await this.db.transaction().execute((trx) => insertEvents(trx, events));
  }

  async lastEventId(): Promise<number> {
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  async listEvents(query: EventQuery): Promise<StoredEvent[]> {
    let q = this.db.selectFrom('events').selectAll();
    if (query.after !== undefined) q = q.where('id', '>', query.after);
    if (query.before !== undefined) q = q.where('id', '<', query.before);
    if (query.deviceId !== undefined) q = q.where('device_id', '=', query.deviceId);
    if (query.rolloutId !== undefined) q = q.where('rollout_id', '=', query.rolloutId);
    if (query.typePrefix !== undefined) {
      // A literal prefix: its `%`, `_` and `\` escaped, with the escape character named, as SQLite has none
      // by default (PostgreSQL's is `\`).
      const pattern = `${query.typePrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      q = q.where((eb) => sql<SqlBool>`${eb.ref('type')} like ${pattern} escape '\\'`);
    }
    const rows = await q
      .orderBy('id', query.newestFirst ? 'desc' : 'asc')
      .limit(query.limit)
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      at: Number(r.at),
      type: r.type,
      deviceId: r.device_id,
      rolloutId: r.rollout_id,
      actor: r.actor,
      reason: r.reason,
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }

  async createApiToken(token: ApiToken, tokenHash: string): Promise<void> {
    await insertApiToken(this.db, token, tokenHash);
  }

  async findApiToken(tokenHash: string): Promise<ApiToken | undefined> {
    const row = await this.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return (
      row && {
        id: row.id,
        name: row.name,
        role: row.role as ApiToken['role'],
        createdAt: Number(row.created_at),
      }
    );
  }

  async countApiTokens(): Promise<number> {
    const row = await this.db
      .selectFrom('api_tokens')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async createEnrollmentToken(token: EnrollmentToken, tokenHash: string, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('enrollment_tokens')
        .values({
          id: token.id,
          token_hash: tokenHash,
          uses_left: token.usesLeft,
          expires_at: token.expiresAt,
          tags: JSON.stringify(token.tags),
          created_at: token.createdAt,
          revoked_at: null,
          claim_filter: token.claim ?? null,
        })
        .execute();
      await insertEvents(trx, [
        {
          at: token.createdAt,
          type: 'enrollment.created',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: {
            id: token.id,
            usesLeft: token.usesLeft,
            expiresAt: token.expiresAt,
            ...(token.claim ? { claim: token.claim } : {}),
          },
        },
      ]);
    });
  }

  listEnrollmentTokens(): Promise<EnrollmentTokenInfo[]> {
    return listEnrollmentTokens(this.db);
  }

  revokeEnrollmentToken(id: string, at: number, actor: string): Promise<void> {
    return revokeEnrollmentToken(this.db, id, at, actor);
  }

  replaceApiToken(token: ApiToken, tokenHash: string, actor: string): Promise<number> {
    return replaceApiToken(this.db, token, tokenHash, actor);
  }
}

/** A primary-key or unique violation, as either database reports it. */
function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
