/**
 * What differs between the databases, in one object (Kysely's DialectAdapter is the model): capability flags
 * and named hooks the shared SQL (shared/) asks, instead of testing which database it runs on. Each dialect
 * folder (sqlite/, postgres/) builds its adapter in `adapter.ts`; SQLite's may add native paths, which take
 * over a whole operation with prepared better-sqlite3 statements and must behave exactly as the shared code
 * (test/native-equivalence.test.ts compares them).
 */
import type { Expression, Kysely } from 'kysely';
import type { DeviceRecord } from '../core/device.js';
import type { PlanDevice, PlannedTarget } from '../core/rollout/plan.js';
import type { Dialect } from './migrations.js';
import type { Database, DeviceUpdatesTable } from './schema.js';
import type { Db } from './shared/events.js';
import type { OfferedRollout, OfferRow } from './shared/updates.js';
import type {
  HeartbeatOutcome,
  ImportResult,
  NewEvent,
  PlanSelection,
  PresentedHeartbeat,
  StatusTransition,
  TimeContext,
  UpdateAction,
} from './store.js';
import type { ReportRow } from './update-effects.js';

/** A select that can lock the rows it reads (Kysely's SelectQueryBuilder). */
export interface Lockable<Q> {
  forUpdate(): Q;
}

export interface DialectAdapter {
  readonly dialect: Dialect;
  /**
   * Whether the shared code must take row locks (SELECT … FOR UPDATE) to serialize decisions: false where
   * every write transaction runs alone anyway (SQLite), true where transactions run side by side (PostgreSQL).
   */
  readonly locksRows: boolean;
  /** Whether a select can pass over rows another transaction holds (FOR UPDATE SKIP LOCKED). */
  readonly supportsSkipLocked: boolean;
  /** Whether `rollout_counts` is kept by triggers (migration 0007) rather than counted from the rows. */
  readonly keepsRolloutCounts: boolean;
  /**
   * Whether a batch of reports shares one transaction (group commit, where commits are the cost) rather than
   * one each (where a report's row lock must not wait for the rest of the batch).
   */
  readonly reportsShareTransaction: boolean;
  /** `q` taking row locks on what it reads when this database needs them; `q` unchanged otherwise. */
  lockRowsForUpdate<Q extends Lockable<Q>>(q: Q): Q;
  /** Makes writers queue on a whole table for the rest of the transaction (a no-op where writers queue anyway). */
  lockTable(trx: Db, table: keyof Database): Promise<void>;
  /**
   * Holds a lock named `name` for the rest of the transaction, so deciders that read a count and write against
   * it take turns across replicas (a no-op where writers queue anyway).
   */
  lockNamed(trx: Db, name: string): Promise<void>;
  /**
   * The state of a device's update (table alias `u`) in a look-up of that device's updates by state: SQLite
   * seeks the device once with `+state`, rather than once per state asked for.
   */
  stateInDeviceLookup(u: string): Expression<string>;
  /** Work after the Kysely pool is closed (SQLite stops its checkpoint worker). */
  close?(): Promise<void>;
  /** The database's size in bytes, where it is one file (SQLite). */
  sizeBytes?(): number;
  /** The committed database as an image to reopen in memory (SQLite). */
  image?(): Promise<Buffer>;
  /** Whole operations done natively; the shared code runs whatever is not here. */
  readonly native?: NativePaths;
}

/** The rows the offer and reports read and write, each step inside the caller's transaction `trx`. */
export interface UpdateRows {
  /** The devices' updates a heartbeat answers with, with what the offer reads of the device and release. */
  offerRows(deviceIds: string[]): Promise<OfferRow[]>;
  /** pending → `to` with its event, only by the first writer. True when this call moved it. */
  movePending(
    trx: Db,
    r: { id: string; device_id: string; rollout_id: string | null },
    to: 'notified' | 'skipped',
    ctx: TimeContext,
    reason: string,
  ): Promise<boolean>;
  writeEvents(trx: Db, events: NewEvent[]): Promise<void>;
  /** The rollout a grant is decided for, locked where rows are locked. */
  lockedRollout(trx: Db, rolloutId: string): Promise<OfferedRollout | undefined>;
  /** Updates of the rollout holding a download slot now. */
  inProgress(trx: Db, rolloutId: string): Promise<number>;
  reportRow(trx: Db, deviceId: string, updateId: string): Promise<ReportRow | undefined>;
  /** The report's columns, only while the update is in the state `row` was read in (the one state writer's rule). */
  writeReport(trx: Db, row: ReportRow, set: Partial<DeviceUpdatesTable>): Promise<void>;
  /** A device that reports an install succeeded runs that release now. */
  recordRunningVersion(trx: Db, deviceId: string, releaseId: string, at: number): Promise<void>;
}

/** What a new rollout reads and writes in bulk, inside the create (or add-targets) transaction `trx`. */
export interface RolloutRows {
  /** The devices a new rollout plans over and, when the read tells, those with an update waiting. */
  readPlanDevices(
    trx: Db,
    selection: PlanSelection,
    ctx: TimeContext,
  ): Promise<{ devices: PlanDevice[]; waiting?: Set<string> }>;
  /** The same devices for a dry run, outside any transaction. */
  planDevices(selection: PlanSelection, ctx: TimeContext): Promise<PlanDevice[]>;
  insertTargets(
    trx: Db,
    rollout: { id: string; releaseId: string; action: UpdateAction },
    targets: PlannedTarget[],
    now: number,
  ): Promise<void>;
  /** Open updates of these devices from elsewhere that have not started are cancelled: the newest wins. */
  supersede(trx: Db, rolloutId: string, deviceIds: string[], now: number): Promise<void>;
}

/** Native implementations of Store operations (see sqlite/adapter.ts); each replaces the shared one whole. */
export interface NativePaths {
  recordHeartbeats?(batch: PresentedHeartbeat[], ctx: TimeContext): Promise<HeartbeatOutcome[]>;
  sweepStatuses?(ctx: TimeContext, since?: number): Promise<StatusTransition[]>;
  importDevices?(records: DeviceRecord[], ctx: TimeContext, actor: string): Promise<ImportResult>;
  setCredentials?(
    credentials: ReadonlyArray<{ id: string; credentialHash: string }>,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ set: number; refused: string[] }>;
  /** Built by the store for its context: the native rows may use shared queries (the plan's). */
  updateRows?(s: SqlContext): UpdateRows;
  rolloutRows?(s: SqlContext): RolloutRows;
}

/** What every shared module works with: the Kysely handle and the adapter of its database. */
export interface SqlContext {
  readonly db: Kysely<Database>;
  readonly adapter: DialectAdapter;
}
