/**
 * Device updates over Kysely: assignment, the offer made on each heartbeat, and device reports. Every
 * state change is checked by core/update-state.ts and written with its event in one transaction.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { FleetError, isFleetError } from '../core/errors.js';
import { NO_TAG_VALUE, type SlotRequest } from '../core/rollout/dispatch.js';
import type { UpdatePurpose } from '../core/rollout/offer.js';
import type { RolloutState } from '../core/rollout/rollout-state.js';
import type { RolloutSpec } from '../core/rollout/spec.js';
import { compareVersions, versionKey } from '../core/semver.js';
import { ACTIVE_STATES, checkTransition, type UpdateState } from '../core/update-state.js';
import { byteOrder } from './byte-order.js';
import { asCallerError } from './db-errors.js';
import type { Dialect } from './migrations.js';
import { updatesInProgress, updatesSucceeded } from './rollout-counts.js';
import type { Database, DeviceUpdatesTable } from './schema.js';
import { type Db, INSERT_CHUNK, insertEvents } from './sql-events.js';
import { rowToRelease } from './sql-releases.js';
import type {
  AssignResult,
  DeviceUpdate,
  NewEvent,
  Release,
  ReportItem,
  ReportOutcome,
  StatusReport,
  TimeContext,
  UpdateAction,
  UpdateOffer,
  UpdateStore,
} from './store.js';
import { storedSpec } from './stored-spec.js';
import { transact } from './transact.js';
import {
  allocateGrants,
  firmwareChangedEvent,
  planGrants,
  type ReportRow,
  reportEffects,
  updateEvent,
  type WaitingUpdate,
} from './update-effects.js';

/** Updates a device still has to act on (or is acting on). */
export const OPEN_UPDATE_STATES = ['pending', 'scheduled', ...ACTIVE_STATES] as UpdateState[];
/** What a heartbeat answers with: `scheduled` ones wait for their phase or start and are not mentioned yet. */
export const OFFERABLE_STATES = ['pending', ...ACTIVE_STATES] as UpdateState[];

export type OfferRow = Selectable<DeviceUpdatesTable> & {
  /** The version of the update's release. */
  version: string;
  device_timezone: string | null;
  device_firmware: string | null;
};

function rowToUpdate(row: Selectable<DeviceUpdatesTable>): DeviceUpdate {
  return {
    id: row.id,
    deviceId: row.device_id,
    releaseId: row.release_id,
    rolloutId: row.rollout_id,
    phase: Number(row.phase),
    purpose: row.purpose as UpdatePurpose,
    state: row.state as UpdateState,
    action: row.action as UpdateAction,
    lastSeq: Number(row.last_seq),
    progress: row.progress === null ? null : Number(row.progress),
    error: row.error,
    attempts: Number(row.attempts),
    fromVersion: row.from_version,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}

export class SqlUpdates implements UpdateStore {
  constructor(
    protected readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async assign(
    deviceIds: string[],
    releaseId: string,
    options: { action: UpdateAction; rolloutId?: string | null },
    ctx: TimeContext,
    actor: string,
  ): Promise<AssignResult> {
    const devices = [...new Set(deviceIds)];
    return transact(this.db, async (trx) => {
      // Locked in one order whatever the caller's: two assigns over the same devices then queue rather than
      // each wait for a lock the other holds (a deadlock on PostgreSQL).
      if (this.dialect === 'postgres') await this.lockDevices(trx, [...devices].sort(byteOrder));
      const releaseRow = await trx
        .selectFrom('releases')
        .selectAll()
        .where('id', '=', releaseId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (!releaseRow) throw new FleetError('NOT_FOUND', `release ${releaseId} does not exist`);
      const release = rowToRelease(releaseRow);
      const result: AssignResult = { assigned: [], skipped: [] };
      const events: NewEvent[] = [];
      for (const deviceId of devices) {
        const device = await trx
          .selectFrom('devices')
          .select(['hardware_type', 'firmware_version', 'decommissioned_at'])
          .where('id', '=', deviceId)
          .executeTakeFirst();
        const skip = (reason: string) => result.skipped.push({ deviceId, reason });
        if (!device) {
          skip('not registered');
          continue;
        }
        if (device.decommissioned_at !== null) {
          skip('decommissioned');
          continue;
        }
        if (device.hardware_type !== null && !release.hardware.includes(device.hardware_type)) {
          skip(`hardware ${device.hardware_type} is not one of ${release.hardware.join(', ')}`);
          continue;
        }
        if (device.firmware_version === release.version && options.action !== 'switch') {
          skip(`already runs ${release.version}`);
          continue;
        }
        const open = await trx
          .selectFrom('device_updates')
          .selectAll()
          .where('device_id', '=', deviceId)
          .where('state', 'in', OPEN_UPDATE_STATES)
          .execute();
        const busy = open.find((u) => ACTIVE_STATES.has(u.state as UpdateState));
        if (busy) {
          skip(`busy with update ${busy.id} (${busy.state})`);
          continue;
        }
        for (const old of open) {
          await trx
            .updateTable('device_updates')
            .set({ state: 'cancelled', updated_at: ctx.now, finished_at: ctx.now, error: 'superseded' })
            .where('id', '=', old.id)
            .execute();
          events.push(
            updateEvent(
              { id: old.id, deviceId, rolloutId: old.rollout_id },
              old.state as UpdateState,
              'cancelled',
              ctx.now,
              actor,
              'superseded by a newer assignment',
            ),
          );
        }
        const row = {
          id: `upd_${randomBytes(9).toString('base64url')}`,
          device_id: deviceId,
          release_id: release.id,
          rollout_id: options.rolloutId ?? null,
          state: 'pending',
          action: options.action,
          last_seq: 0,
          progress: null,
          error: null,
          attempts: 0,
          from_version: device.firmware_version,
          created_at: ctx.now,
          updated_at: ctx.now,
          finished_at: null,
          phase: 0,
          purpose: 'update',
          not_before: null,
          granted_at: null,
          slot_key: null,
        };
        await trx.insertInto('device_updates').values(row).execute();
        const update = rowToUpdate(row);
        result.assigned.push(update);
        events.push(
          updateEvent(update, null, 'pending', ctx.now, actor, 'assigned', {
            release: `${release.name}@${release.version}`,
            downgrade:
              device.firmware_version !== null &&
              compareVersionsSafe(release.version, device.firmware_version) < 0,
          }),
        );
      }
      await insertEvents(trx, events);
      return result;
    });
  }

  /**
   * PostgreSQL: the devices' rows locked in id order before their updates are read, so a concurrent assign
   * to one of them waits and then sees this one's update (rather than both superseding the same old one).
   */
  private async lockDevices(trx: Db, deviceIds: readonly string[]): Promise<void> {
    for (let i = 0; i < deviceIds.length; i += INSERT_CHUNK) {
      await trx
        .selectFrom('devices')
        .select('id')
        .where('id', 'in', deviceIds.slice(i, i + INSERT_CHUNK))
        .orderBy('id')
        .forUpdate()
        .execute();
    }
  }

  async offer(deviceIds: string[], ctx: TimeContext): Promise<Map<string, UpdateOffer[]>> {
    const offers = new Map<string, UpdateOffer[]>();
    if (deviceIds.length === 0) return offers;
    const rows = await this.offerRows(deviceIds);
    if (rows.length === 0) return offers;

    const holds = new Map<string, number>();
    const direct = rows.filter((r) => r.state === 'pending' && r.rollout_id === null);
    if (direct.length > 0) {
      await this.db.transaction().execute(async (trx) => {
        for (const r of direct) {
          if (await this.movePending(trx, r, 'notified', ctx, 'offered on heartbeat')) r.state = 'notified';
        }
      });
    }
    const byRollout = new Map<string, OfferRow[]>();
    for (const r of rows) {
      if (r.state !== 'pending' || r.rollout_id === null) continue;
      const list = byRollout.get(r.rollout_id);
      if (list) list.push(r);
      else byRollout.set(r.rollout_id, [r]);
    }
    const soft = new Set<string>();
    for (const [rolloutId, waiting] of byRollout) {
      if (await this.grantSlots(rolloutId, waiting, holds, ctx)) soft.add(rolloutId);
    }
    for (const id of await this.softRollouts(rows, byRollout)) soft.add(id);

    const releases = await this.releasesOf(rows);
    for (const r of rows) {
      if (!OFFERABLE_STATES.includes(r.state as UpdateState)) continue; // skipped while granting
      const list = offers.get(r.device_id) ?? [];
      list.push({
        update: rowToUpdate(r),
        release: releases.get(r.release_id)!,
        retryAfterSec: holds.get(r.id) ?? null,
        soft: r.rollout_id !== null && soft.has(r.rollout_id),
      });
      offers.set(r.device_id, list);
    }
    return offers;
  }

  /** The devices' updates a heartbeat answers with, with what the offer reads of the device and release. */
  protected offerRows(deviceIds: string[]): Promise<OfferRow[]> {
    return this.db
      .selectFrom('device_updates as u')
      .innerJoin('releases as r', 'r.id', 'u.release_id')
      .innerJoin('devices as d', 'd.id', 'u.device_id')
      .selectAll('u')
      .select(['r.version', 'd.timezone as device_timezone', 'd.firmware_version as device_firmware'])
      .where('u.device_id', 'in', deviceIds)
      .where('u.state', 'in', OFFERABLE_STATES)
      .orderBy('u.created_at')
      .execute();
  }

  /**
   * Releases by id, kept once read: every offer hands the device its release's manifest and signature, and a
   * release never changes (one in use by an update that is not final cannot be deleted).
   */
  private readonly releases = new Map<string, Release>();

  private async releasesOf(rows: readonly OfferRow[]): Promise<Map<string, Release>> {
    const missing = [...new Set(rows.map((r) => r.release_id))].filter((id) => !this.releases.has(id));
    if (missing.length > 0) {
      if (this.releases.size > 1_000) this.releases.clear();
      const found = await this.db.selectFrom('releases').selectAll().where('id', 'in', missing).execute();
      for (const row of found) this.releases.set(row.id, rowToRelease(row));
    }
    return this.releases;
  }

  /** The rollouts among these rows, not granted to just now, whose action is soft (the device may defer). */
  private async softRollouts(rows: OfferRow[], granted: Map<string, OfferRow[]>): Promise<Set<string>> {
    const ids = [
      ...new Set(
        rows.flatMap((r) => (r.rollout_id === null || granted.has(r.rollout_id) ? [] : [r.rollout_id])),
      ),
    ];
    if (ids.length === 0) return new Set();
    const specs = await this.db
      .selectFrom('rollouts')
      .select(['id', 'spec'])
      .where('id', 'in', ids)
      .execute();
    return new Set(specs.filter((s) => storedSpec(s.spec).action === 'soft').map((s) => s.id));
  }

  /**
   * pending → `to` with its event, only by the first writer: another replica or batch may have moved it
   * meanwhile. True when this call moved it. Notified starts the in-progress timeout; skipped is final.
   */
  protected async movePending(
    trx: Db,
    r: { id: string; device_id: string; rollout_id: string | null },
    to: 'notified' | 'skipped',
    ctx: TimeContext,
    reason: string,
  ): Promise<boolean> {
    const set: Partial<DeviceUpdatesTable> =
      to === 'notified' ? { granted_at: ctx.now } : { error: reason, finished_at: ctx.now };
    const moved = await trx
      .updateTable('device_updates')
      .set({ ...set, state: to, updated_at: ctx.now })
      .where('id', '=', r.id)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    if (Number(moved.numUpdatedRows) !== 1) return false;
    await this.writeEvents(trx, [
      updateEvent(
        { id: r.id, deviceId: r.device_id, rolloutId: r.rollout_id },
        'pending',
        to,
        ctx.now,
        null,
        reason,
      ),
    ]);
    return true;
  }

  protected writeEvents(trx: Db, events: NewEvent[]): Promise<void> {
    return insertEvents(trx, events);
  }

  /** The rollout a grant is decided for, locked on PostgreSQL (SQLite serializes every write transaction). */
  protected async lockedRollout(trx: Db, rolloutId: string): Promise<OfferedRollout | undefined> {
    let q = trx
      .selectFrom('rollouts')
      .select(['state', 'current_phase', 'started_at', 'spec'])
      .where('id', '=', rolloutId);
    if (this.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row && offeredRollout(row);
  }

  /**
   * Grants the slots one rollout's limits allow to its devices asking now, under the rollout's lock, so the
   * limits hold across batches and replicas. True when the rollout's action is soft.
   */
  private async grantSlots(
    rolloutId: string,
    waiting: OfferRow[],
    holds: Map<string, number>,
    ctx: TimeContext,
  ): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const rollout = await this.lockedRollout(trx, rolloutId);
      if (!rollout) return false;
      const plan = planGrants(rollout, waiting.map(waitingUpdate), ctx.now);
      if (plan.candidates.length > 0) {
        allocateGrants(rollout, plan, await this.slotUsage(trx, rolloutId, rollout.spec, ctx.now), ctx.now);
      }
      const byId = new Map(waiting.map((r) => [r.id, r]));
      for (const g of plan.grants) {
        const r = byId.get(g.id)!;
        if (await this.movePending(trx, r, 'notified', ctx, g.reason)) r.state = 'notified';
      }
      for (const k of plan.skips) {
        const r = byId.get(k.id)!;
        await this.movePending(trx, r, 'skipped', ctx, k.reason);
        r.state = 'skipped';
      }
      for (const [id, sec] of plan.holds) holds.set(id, sec);
      return rollout.spec.action === 'soft';
    });
  }

  /** Updates of the rollout holding a download slot now. */
  protected inProgress(trx: Db, rolloutId: string): Promise<number> {
    return updatesInProgress(trx, this.dialect, rolloutId);
  }

  /** What the rollout's limits are measured against: updates holding a slot now, and offers this minute. */
  private async slotUsage(trx: Db, rolloutId: string, spec: RolloutSpec, now: number): Promise<SlotUsage> {
    const usage: SlotUsage = { inProgress: await this.inProgress(trx, rolloutId) };
    if (spec.maxConcurrentPer) {
      const per = await trx
        .selectFrom('device_updates')
        .select(['slot_key', (eb) => eb.fn.countAll<number>().as('n')])
        .where('rollout_id', '=', rolloutId)
        .where('purpose', '=', 'update')
        .where('state', 'in', [...ACTIVE_STATES])
        .groupBy('slot_key')
        .execute();
      usage.inProgressPer = Object.fromEntries(per.map((p) => [p.slot_key ?? NO_TAG_VALUE, Number(p.n)]));
    }
    if (spec.rate) {
      const minuteStart = now - (((now % 60_000) + 60_000) % 60_000);
      const offered = await trx
        .selectFrom('device_updates')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('rollout_id', '=', rolloutId)
        .where('granted_at', '>=', minuteStart)
        .executeTakeFirstOrThrow();
      usage.offeredThisMinute = Number(offered.n);
      if (spec.rate.afterSuccesses !== null) {
        usage.succeeded = await updatesSucceeded(trx, this.dialect, rolloutId);
      }
    }
    return usage;
  }

  async report(
    deviceId: string,
    updateId: string,
    report: StatusReport,
    ctx: TimeContext,
  ): Promise<ReportOutcome> {
    const [result] = await this.reportBatch([{ deviceId, updateId, report }], ctx);
    if (result instanceof Error) throw result;
    return result!;
  }

  /**
   * Several devices' reports, each taken or refused on its own (a refusal is its FleetError). On SQLite they
   * share one transaction (group commit): a failure of the database aborts it whole, and the caller writes
   * each report again alone (see registry/group-commit.ts). On PostgreSQL each is its own transaction, its
   * update locked while it is checked, so a time-out or the same report sent to another replica is never
   * overwritten, and a report the database fails on fails alone: its error is its answer.
   */
  async reportBatch(items: readonly ReportItem[], ctx: TimeContext): Promise<Array<ReportOutcome | Error>> {
    if (this.dialect === 'postgres') {
      return Promise.all(
        items.map((item) =>
          transact(this.db, (trx) => this.reportOne(trx, item, ctx)).catch((error: unknown) =>
            itsOwnFailure(error, item),
          ),
        ),
      );
    }
    return this.db
      .transaction()
      .execute(async (trx) => {
        const out: Array<ReportOutcome | FleetError> = [];
        for (const item of items) out.push(await this.reportOne(trx, item, ctx).catch(refusal));
        return out;
      })
      .catch((error: unknown) => {
        // Alone, the report's failure is its answer; in a batch, the batch is written again item by item.
        if (items.length === 1) return [itsOwnFailure(error, items[0]!)];
        throw error;
      });
  }

  /** One report inside `trx`: checked before anything is written, so a refused one writes nothing. */
  private async reportOne(trx: Db, item: ReportItem, ctx: TimeContext): Promise<ReportOutcome> {
    const row = await this.reportRow(trx, item.deviceId, item.updateId);
    const effects = reportEffects(item.deviceId, item.updateId, row, item.report, ctx);
    if (!effects.write) return effects.outcome;
    await this.writeReport(trx, item.updateId, effects.set);
    await this.writeEvents(trx, effects.events);
    if (effects.runsRelease) await this.recordRunningVersion(trx, item.deviceId, row!.release_id, ctx.now);
    return effects.outcome;
  }

  protected reportRow(trx: Db, deviceId: string, updateId: string): Promise<ReportRow | undefined> {
    let q = trx
      .selectFrom('device_updates')
      .select(['id', 'rollout_id', 'release_id', 'state', 'action', 'last_seq', 'progress', 'attempts'])
      .where('id', '=', updateId)
      .where('device_id', '=', deviceId);
    if (this.dialect === 'postgres') q = q.forUpdate();
    return q.executeTakeFirst();
  }

  protected async writeReport(trx: Db, updateId: string, set: Partial<DeviceUpdatesTable>): Promise<void> {
    await trx.updateTable('device_updates').set(set).where('id', '=', updateId).execute();
  }

  /**
   * A device that reports an install succeeded runs that release now: the registry says so at once rather
   * than at its next heartbeat, so a rollout created meanwhile knows what it would roll back to.
   */
  protected async recordRunningVersion(
    trx: Db,
    deviceId: string,
    releaseId: string,
    at: number,
  ): Promise<void> {
    const release = await trx
      .selectFrom('releases')
      .select('version')
      .where('id', '=', releaseId)
      .executeTakeFirst();
    const device = await trx
      .selectFrom('devices')
      .select('firmware_version')
      .where('id', '=', deviceId)
      .executeTakeFirst();
    if (!release || !device || device.firmware_version === release.version) return;
    await trx
      .updateTable('devices')
      .set({ firmware_version: release.version, firmware_key: versionKey(release.version), updated_at: at })
      .where('id', '=', deviceId)
      .execute();
    await this.writeEvents(trx, [
      firmwareChangedEvent(deviceId, device.firmware_version, release.version, at),
    ]);
  }

  async get(id: string): Promise<DeviceUpdate | undefined> {
    const row = await this.db
      .selectFrom('device_updates')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && rowToUpdate(row);
  }

  async list(query: {
    deviceId?: string;
    releaseId?: string;
    rolloutId?: string;
    state?: UpdateState;
    phase?: number;
    limit: number;
  }): Promise<DeviceUpdate[]> {
    let q = this.db.selectFrom('device_updates').selectAll();
    if (query.deviceId !== undefined) q = q.where('device_id', '=', query.deviceId);
    if (query.releaseId !== undefined) q = q.where('release_id', '=', query.releaseId);
    if (query.rolloutId !== undefined) q = q.where('rollout_id', '=', query.rolloutId);
    if (query.state !== undefined) q = q.where('state', '=', query.state);
    if (query.phase !== undefined) q = q.where('phase', '=', query.phase);
    const rows = await q.orderBy('created_at', 'desc').orderBy('id').limit(query.limit).execute();
    return rows.map(rowToUpdate);
  }

  async cancel(id: string, ctx: TimeContext, actor: string): Promise<DeviceUpdate> {
    return this.db.transaction().execute(async (trx: Db) => {
      let q = trx.selectFrom('device_updates').selectAll().where('id', '=', id);
      if (this.dialect === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) throw new FleetError('NOT_FOUND', `update ${id} does not exist`);
      checkTransition(row.state as UpdateState, 'cancelled');
      const next = { ...row, state: 'cancelled', updated_at: ctx.now, finished_at: ctx.now };
      await trx.updateTable('device_updates').set(next).where('id', '=', id).execute();
      await insertEvents(trx, [
        updateEvent(
          { id, deviceId: row.device_id, rolloutId: row.rollout_id },
          row.state as UpdateState,
          'cancelled',
          ctx.now,
          actor,
          'cancelled by operator',
        ),
      ]);
      return rowToUpdate(next);
    });
  }

  async mayDownload(deviceId: string, sha256: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('device_updates as u')
      .innerJoin('releases as r', 'r.id', 'u.release_id')
      .select('u.id')
      .where('u.device_id', '=', deviceId)
      .where('r.sha256', '=', sha256)
      .where('u.state', 'in', OPEN_UPDATE_STATES)
      .executeTakeFirst();
    return row !== undefined;
  }
}

function compareVersionsSafe(a: string, b: string): number {
  try {
    return compareVersions(a, b);
  } catch {
    return 0;
  }
}

type SlotUsage = Pick<SlotRequest, 'inProgress' | 'inProgressPer' | 'succeeded' | 'offeredThisMinute'>;

/** A refused report is an answer, not a failure of the batch; anything else is. */
function refusal(error: unknown): FleetError {
  if (isFleetError(error)) return error;
  throw error;
}

/** A report's own failure as its answer: a value the database refused is the device's mistake. */
function itsOwnFailure(error: unknown, item: ReportItem): Error {
  const seen = asCallerError(error, `the report of ${item.deviceId} on update ${item.updateId}`);
  return seen instanceof Error ? seen : new Error(String(seen));
}

type OfferedRollout = Parameters<typeof planGrants>[0] & { spec: RolloutSpec };

export function offeredRollout(row: {
  state: string;
  current_phase: number;
  started_at: number | null;
  spec: string;
}): OfferedRollout {
  return {
    state: row.state as RolloutState,
    currentPhase: Number(row.current_phase),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    spec: storedSpec(row.spec),
  };
}

export function waitingUpdate(r: OfferRow): WaitingUpdate {
  return {
    id: r.id,
    phase: Number(r.phase),
    purpose: r.purpose as UpdatePurpose,
    action: r.action,
    notBefore: r.not_before === null ? null : Number(r.not_before),
    createdAt: Number(r.created_at),
    slotKey: r.slot_key,
    deviceZone: r.device_timezone,
    deviceFirmware: r.device_firmware,
    version: r.version,
  };
}
