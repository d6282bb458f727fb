/**
 * Device updates (UpdateStore) in shared SQL: the façade over assignment and cancelling (update-assign.ts), the
 * offer made on each heartbeat (update-offer.ts) and device reports (update-reports.ts), plus the reads. Every
 * state change goes through update-state-writer.ts (checked by core/update-state.ts, written with its event).
 * The rows the offer and reports touch go through `rows`: the adapter's native ones where they exist, else
 * update-rows.ts.
 */
import type { Selectable } from 'kysely';
import { downloadRateFor, isMetered } from '../../core/bandwidth.js';
import type { RolloutState } from '../../core/rollout/rollout-state.js';
import type { RolloutSpec } from '../../core/rollout/spec.js';
import { ACTIVE_STATES, OPEN_STATES, type UpdateState } from '../../core/update-state.js';
import type { SqlContext, UpdateRows } from '../adapter.js';
import type { DeviceUpdatesTable } from '../schema.js';
import type {
  AssignResult,
  DeviceUpdate,
  OfferOptions,
  Release,
  ReportItem,
  ReportOutcome,
  StatusReport,
  TimeContext,
  UpdateAction,
  UpdateOffer,
  UpdateStore,
} from '../store.js';
import { storedSpec } from '../stored-spec.js';
import type { planGrants, WaitingUpdate } from '../update-effects.js';
import { assign, cancel } from './update-assign.js';
import { offer } from './update-offer.js';
import { report, reportBatch } from './update-reports.js';
import { sharedUpdateRows } from './update-rows.js';

/** Updates a device still has to act on (or is acting on). */
export const OPEN_UPDATE_STATES: UpdateState[] = [...OPEN_STATES];
/** What a heartbeat answers with: `scheduled` ones wait for their phase or start and are not mentioned yet. */
export const OFFERABLE_STATES: UpdateState[] = ['pending', ...ACTIVE_STATES];

export type OfferRow = Selectable<DeviceUpdatesTable> & {
  /** The version of the update's release. */
  version: string;
  device_timezone: string | null;
  device_firmware: string | null;
  /** The release's size, and the device's tags and last heartbeat metrics (JSON), for the bandwidth rules. */
  release_size: number;
  device_tags: string;
  device_metrics: string | null;
};

/** What the offer, the reports and assignment work with. */
export interface UpdatesContext extends SqlContext {
  readonly rows: UpdateRows;
  /**
   * Releases by id, kept once read: every offer hands the device its release's manifest and signature, and a
   * release never changes (one in use by an update that is not final cannot be deleted).
   */
  readonly releaseCache: Map<string, Release>;
}

export function rowToUpdate(row: Selectable<DeviceUpdatesTable>): DeviceUpdate {
  return {
    id: row.id,
    deviceId: row.device_id,
    releaseId: row.release_id,
    rolloutId: row.rollout_id,
    phase: Number(row.phase),
    purpose: row.purpose,
    state: row.state,
    action: row.action,
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

export class SqlUpdates implements UpdateStore, UpdatesContext {
  readonly db: SqlContext['db'];
  readonly adapter: SqlContext['adapter'];
  readonly rows: UpdateRows;
  readonly releaseCache = new Map<string, Release>();

  constructor(s: SqlContext) {
    this.db = s.db;
    this.adapter = s.adapter;
    this.rows = s.adapter.native?.updateRows?.(s) ?? sharedUpdateRows(s);
  }

  assign(
    deviceIds: string[],
    releaseId: string,
    options: { action: UpdateAction; rolloutId?: string | null },
    ctx: TimeContext,
    actor: string,
  ): Promise<AssignResult> {
    return assign(this, deviceIds, releaseId, options, ctx, actor);
  }

  offer(deviceIds: string[], ctx: TimeContext, options?: OfferOptions): Promise<Map<string, UpdateOffer[]>> {
    return offer(this, deviceIds, ctx, options);
  }

  report(deviceId: string, updateId: string, status: StatusReport, ctx: TimeContext): Promise<ReportOutcome> {
    return report(this, deviceId, updateId, status, ctx);
  }

  reportBatch(items: readonly ReportItem[], ctx: TimeContext): Promise<Array<ReportOutcome | Error>> {
    return reportBatch(this, items, ctx);
  }

  cancel(id: string, ctx: TimeContext, actor: string): Promise<DeviceUpdate> {
    return cancel(this, id, ctx, actor);
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

  async downloadGrant(deviceId: string, sha256: string): Promise<{ rateLimit: number | null } | undefined> {
    const row = await this.db
      .selectFrom('device_updates as u')
      .innerJoin('releases as r', 'r.id', 'u.release_id')
      .innerJoin('devices as d', 'd.id', 'u.device_id')
      .leftJoin('rollouts as o', 'o.id', 'u.rollout_id')
      .select(['o.spec', 'd.tags'])
      .where('u.device_id', '=', deviceId)
      .where('r.sha256', '=', sha256)
      .where('u.state', 'in', OPEN_UPDATE_STATES)
      .executeTakeFirst();
    if (!row) return undefined;
    const rolloutLimit = row.spec === null ? null : storedSpec(row.spec).downloadRateLimit;
    return { rateLimit: downloadRateFor(rolloutLimit, JSON.parse(row.tags) as Record<string, string>) };
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

export type OfferedRollout = Parameters<typeof planGrants>[0] & { spec: RolloutSpec };

export function offeredRollout(row: {
  state: RolloutState;
  current_phase: number;
  started_at: number | null;
  spec: string;
}): OfferedRollout {
  return {
    state: row.state,
    currentPhase: Number(row.current_phase),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    spec: storedSpec(row.spec),
  };
}

export function waitingUpdate(r: OfferRow): WaitingUpdate {
  return {
    id: r.id,
    phase: Number(r.phase),
    purpose: r.purpose,
    action: r.action,
    notBefore: r.not_before === null ? null : Number(r.not_before),
    createdAt: Number(r.created_at),
    slotKey: r.slot_key,
    deviceZone: r.device_timezone,
    deviceFirmware: r.device_firmware,
    version: r.version,
    releaseSize: Number(r.release_size),
    metered: isMetered(deviceTags(r), r.device_metrics === null ? null : JSON.parse(r.device_metrics)),
  };
}

export function deviceTags(r: OfferRow): Record<string, string> {
  return JSON.parse(r.device_tags) as Record<string, string>;
}
