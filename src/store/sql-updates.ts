/**
 * Device updates over Kysely: assignment, the offer made on each heartbeat, and device reports. Every
 * state change is checked by core/update-state.ts and written with its event in one transaction.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { FleetError } from '../core/errors.js';
import { allocateSlots, NO_TAG_VALUE, type SlotRequest } from '../core/rollout/dispatch.js';
import { holdFor, type UpdatePurpose } from '../core/rollout/offer.js';
import type { RolloutState } from '../core/rollout/rollout-state.js';
import type { RolloutSpec } from '../core/rollout/spec.js';
import { compareVersions, versionKey } from '../core/semver.js';
import { ACTIVE_STATES, checkTransition, FINAL_STATES, type UpdateState } from '../core/update-state.js';
import type { Dialect } from './migrations.js';
import { updatesInProgress, updatesSucceeded } from './rollout-counts.js';
import type { Database, DeviceUpdatesTable } from './schema.js';
import { type Db, insertEvents } from './sql-events.js';
import { rowToRelease } from './sql-releases.js';
import type {
  AssignResult,
  DeviceUpdate,
  NewEvent,
  ReportOutcome,
  StatusReport,
  TimeContext,
  UpdateAction,
  UpdateOffer,
  UpdateStore,
} from './store.js';
import { storedSpec } from './stored-spec.js';

/** Updates a device still has to act on (or is acting on). */
export const OPEN_UPDATE_STATES = ['pending', 'scheduled', ...ACTIVE_STATES] as UpdateState[];
/** What a heartbeat answers with: `scheduled` ones wait for their phase or start and are not mentioned yet. */
export const OFFERABLE_STATES = ['pending', ...ACTIVE_STATES] as UpdateState[];

type OfferRow = Selectable<DeviceUpdatesTable> & {
  name: string;
  version: string;
  version_key: string;
  type: string;
  hardware: string;
  size: number;
  sha256: string;
  manifest: string;
  signature: string;
  key_id: string;
  allow_downgrade: number;
  release_created_at: number;
  deleted_at: number | null;
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

function updateEvent(
  u: { id: string; deviceId: string; rolloutId: string | null },
  from: UpdateState | null,
  to: UpdateState,
  at: number,
  actor: string | null,
  reason: string | null,
  extra: Record<string, unknown> = {},
): NewEvent {
  return {
    at,
    type: `update.${to}`,
    deviceId: u.deviceId,
    rolloutId: u.rolloutId,
    actor,
    reason,
    data: { update: u.id, from, to, ...extra },
  };
}

export class SqlUpdates implements UpdateStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async assign(
    deviceIds: string[],
    releaseId: string,
    options: { action: UpdateAction; rolloutId?: string | null },
    ctx: TimeContext,
    actor: string,
  ): Promise<AssignResult> {
    return this.db.transaction().execute(async (trx) => {
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
      for (const deviceId of [...new Set(deviceIds)]) {
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

  async offer(deviceIds: string[], ctx: TimeContext): Promise<Map<string, UpdateOffer[]>> {
    const offers = new Map<string, UpdateOffer[]>();
    if (deviceIds.length === 0) return offers;
    const rows = await this.db
      .selectFrom('device_updates as u')
      .innerJoin('releases as r', 'r.id', 'u.release_id')
      .innerJoin('devices as d', 'd.id', 'u.device_id')
      .selectAll('u')
      .select([
        'r.name',
        'r.version',
        'r.version_key',
        'r.type',
        'r.hardware',
        'r.size',
        'r.sha256',
        'r.manifest',
        'r.signature',
        'r.key_id',
        'r.allow_downgrade',
        'r.created_at as release_created_at',
        'r.deleted_at',
        'd.timezone as device_timezone',
        'd.firmware_version as device_firmware',
      ])
      .where('u.device_id', 'in', deviceIds)
      .where('u.state', 'in', OFFERABLE_STATES)
      .orderBy('u.created_at')
      .execute();
    if (rows.length === 0) return offers;

    const holds = new Map<string, number>();
    const direct = rows.filter((r) => r.state === 'pending' && r.rollout_id === null);
    if (direct.length > 0) {
      await this.db.transaction().execute(async (trx) => {
        for (const r of direct) {
          if (await this.grantOne(trx, r, ctx, 'offered on heartbeat')) r.state = 'notified';
        }
      });
    }
    const byRollout = new Map<string, OfferRow[]>();
    for (const r of rows) {
      if (r.state !== 'pending' || r.rollout_id === null) continue;
      byRollout.set(r.rollout_id, [...(byRollout.get(r.rollout_id) ?? []), r]);
    }
    for (const [rolloutId, waiting] of byRollout) await this.grantSlots(rolloutId, waiting, holds, ctx);
    const softRollouts = await this.softRollouts(rows);

    for (const r of rows) {
      if (!OFFERABLE_STATES.includes(r.state as UpdateState)) continue; // skipped while granting
      const release = rowToRelease({
        id: r.release_id,
        name: r.name,
        version: r.version,
        version_key: r.version_key,
        type: r.type,
        hardware: r.hardware,
        size: r.size,
        sha256: r.sha256,
        manifest: r.manifest,
        signature: r.signature,
        key_id: r.key_id,
        allow_downgrade: r.allow_downgrade,
        created_at: r.release_created_at,
        deleted_at: r.deleted_at,
      });
      const list = offers.get(r.device_id) ?? [];
      list.push({
        update: rowToUpdate(r),
        release,
        retryAfterSec: holds.get(r.id) ?? null,
        soft: r.rollout_id !== null && softRollouts.has(r.rollout_id),
      });
      offers.set(r.device_id, list);
    }
    return offers;
  }

  /** The rollouts among these rows whose action is soft (the device may defer the install). */
  private async softRollouts(rows: OfferRow[]): Promise<Set<string>> {
    const ids = [...new Set(rows.flatMap((r) => (r.rollout_id === null ? [] : [r.rollout_id])))];
    if (ids.length === 0) return new Set();
    const specs = await this.db
      .selectFrom('rollouts')
      .select(['id', 'spec'])
      .where('id', 'in', ids)
      .execute();
    return new Set(
      specs.filter((s) => (JSON.parse(s.spec) as { action?: string }).action === 'soft').map((s) => s.id),
    );
  }

  /**
   * pending → `to` with its event, only by the first writer: another replica or batch may have moved it
   * meanwhile. True when this call moved it.
   */
  private async movePending(
    trx: Db,
    r: OfferRow,
    to: 'notified' | 'skipped',
    set: Partial<DeviceUpdatesTable>,
    reason: string,
    ctx: TimeContext,
  ): Promise<boolean> {
    const moved = await trx
      .updateTable('device_updates')
      .set({ ...set, state: to, updated_at: ctx.now })
      .where('id', '=', r.id)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    if (Number(moved.numUpdatedRows) !== 1) return false;
    await insertEvents(trx, [
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

  /** Hands the device its slot: pending → notified, the in-progress timeout counting from now. */
  private grantOne(trx: Db, r: OfferRow, ctx: TimeContext, reason: string): Promise<boolean> {
    return this.movePending(trx, r, 'notified', { granted_at: ctx.now }, reason, ctx);
  }

  /**
   * Devices of one rollout asking to start: each is held (not its phase, outside its window, backing off…)
   * or competes for a download slot. Decided under the rollout's lock, so the limits hold across batches
   * and replicas.
   */
  private async grantSlots(
    rolloutId: string,
    waiting: OfferRow[],
    holds: Map<string, number>,
    ctx: TimeContext,
  ): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('rollouts').selectAll().where('id', '=', rolloutId);
      if (this.dialect === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) return;
      const spec = storedSpec(row.spec);
      const rollout = {
        state: row.state as RolloutState,
        currentPhase: Number(row.current_phase),
        startedAt: row.started_at === null ? null : Number(row.started_at),
        spec,
      };
      const candidates: OfferRow[] = [];
      for (const r of waiting) {
        const hold = holdFor({
          rollout,
          update: {
            phase: Number(r.phase),
            notBefore: r.not_before === null ? null : Number(r.not_before),
            purpose: r.purpose as UpdatePurpose,
          },
          deviceZone: r.device_timezone,
          now: ctx.now,
        });
        if (hold) holds.set(r.id, hold.retryAfterSec);
        else if (r.purpose !== 'update') {
          if (await this.grantOne(trx, r, ctx, r.purpose === 'switch' ? 'switch now' : 'roll back now')) {
            r.state = 'notified';
          }
        } else if (r.action === 'install' && r.device_firmware === r.version) {
          await this.finishAsSkipped(trx, r, `already runs ${r.version}`, ctx);
        } else candidates.push(r);
      }
      if (candidates.length === 0) return;
      candidates.sort(
        (a, b) => Number(a.phase) - Number(b.phase) || Number(a.created_at) - Number(b.created_at),
      );
      const decision = allocateSlots({
        candidates: candidates.map((c) => ({ id: c.id, tagValue: c.slot_key })),
        ...(await this.slotUsage(trx, rolloutId, spec, ctx.now)),
        maxConcurrent: spec.maxConcurrent,
        maxConcurrentPer: spec.maxConcurrentPer,
        rate: spec.rate,
        now: ctx.now,
      });
      const byId = new Map(candidates.map((c) => [c.id, c]));
      for (const id of decision.granted) {
        const r = byId.get(id)!;
        if (await this.grantOne(trx, r, ctx, 'download slot granted')) r.state = 'notified';
      }
      for (const d of decision.deferred) holds.set(d.id, d.retryAfterSec);
    });
  }

  /** What the rollout's limits are measured against: updates holding a slot now, and offers this minute. */
  private async slotUsage(trx: Db, rolloutId: string, spec: RolloutSpec, now: number) {
    const usage: Pick<SlotRequest, 'inProgress' | 'inProgressPer' | 'succeeded' | 'offeredThisMinute'> = {
      inProgress: await updatesInProgress(trx, this.dialect, rolloutId),
    };
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

  private async finishAsSkipped(trx: Db, r: OfferRow, reason: string, ctx: TimeContext): Promise<void> {
    await this.movePending(trx, r, 'skipped', { error: reason, finished_at: ctx.now }, reason, ctx);
    r.state = 'skipped';
  }

  async report(
    deviceId: string,
    updateId: string,
    report: StatusReport,
    ctx: TimeContext,
  ): Promise<ReportOutcome> {
    return this.db.transaction().execute(async (trx) => {
      // Locked on PostgreSQL: a report checked against a state the engine (a time-out) or another replica (the
      // same report sent again) has changed meanwhile would overwrite that change.
      let q = trx
        .selectFrom('device_updates')
        .selectAll()
        .where('id', '=', updateId)
        .where('device_id', '=', deviceId);
      if (this.dialect === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) throw new FleetError('NOT_FOUND', `update ${updateId} is not one of this device's updates`);
      const state = row.state as UpdateState;
      if (report.seq <= Number(row.last_seq)) return { accepted: false, state };
      if (state === 'cancelled') return { accepted: false, state };
      if ((state === 'pending' || state === 'scheduled') && report.state !== 'failed') {
        // The slot is the server's to give: work reported before it was granted would break the limits.
        throw new FleetError(
          'TRANSITION_NOT_ALLOWED',
          `update ${updateId} has not been granted a download slot yet (it is ${state}); wait for the offer`,
          { from: state, to: report.state },
        );
      }
      checkTransition(state, report.state);
      const final = FINAL_STATES.has(report.state);
      await trx
        .updateTable('device_updates')
        .set({
          state: report.state,
          last_seq: report.seq,
          progress: report.progress ?? (report.state === 'succeeded' ? 100 : row.progress),
          error: report.error ?? null,
          updated_at: ctx.now,
          ...(final ? { finished_at: ctx.now } : {}),
          ...(report.state === 'failed' ? { attempts: Number(row.attempts) + 1 } : {}),
        })
        .where('id', '=', updateId)
        .execute();
      // Progress reports are frequent and say nothing new about the state: they update the row only.
      if (report.state !== state) {
        await insertEvents(trx, [
          updateEvent(
            { id: row.id, deviceId, rolloutId: row.rollout_id },
            state,
            report.state,
            ctx.now,
            `device:${deviceId}`,
            report.error ?? 'reported by device',
            { seq: report.seq },
          ),
        ]);
      }
      if (report.state === 'succeeded' && row.action !== 'download_only') {
        await this.recordRunningVersion(trx, deviceId, row.release_id, ctx.now);
      }
      return { accepted: true, state: report.state };
    });
  }

  /**
   * A device that reports an install succeeded runs that release now: the registry says so at once rather
   * than at its next heartbeat, so a rollout created meanwhile knows what it would roll back to.
   */
  private async recordRunningVersion(
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
    await insertEvents(trx, [
      {
        at,
        type: 'device.firmware_changed',
        deviceId,
        rolloutId: null,
        actor: `device:${deviceId}`,
        reason: 'update succeeded',
        data: { from: device.firmware_version, to: release.version },
      },
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
