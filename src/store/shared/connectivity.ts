/**
 * Connectivity classes in shared SQL (docs/connectivity.md). Each device's row carries the class it resolved to
 * and that class's figures (migration 0040), so every reader of the derived status — device JSON, the filter's
 * `status`, fleet statistics, the sweep, the heartbeat — reads its own row with no join and no query per device.
 * The resolution is one statement over the fleet: a CASE of the classes' matches in precedence order, compiled by
 * the filter compiler (a group match is the group's expanded filter), selecting only devices whose class changed.
 */
import { type SqlBool, sql } from 'kysely';
import { byPrecedence, type ConnectivityClass, matchFilter } from '../../core/connectivity.js';
import { FleetError } from '../../core/errors.js';
import type { FilterNode } from '../../core/filter/index.js';
import type { SqlContext } from '../adapter.js';
import type { ConnectivityStore, StoredConnectivityClass } from '../connectivity-store.js';
import type { ConnectivityClassesTable } from '../schema.js';
import type { TimeContext } from '../store.js';
import type { DeviceEb } from './devices.js';
import { type Db, insertEvents } from './events.js';
import { compileFilter } from './filter-sql.js';
import { expandFilter } from './groups.js';

/** Devices written per statement when their class changes. */
const MOVE_CHUNK = 1_000;
const NOTHING: FilterNode = { kind: 'or', children: [] };

type Row = ConnectivityClassesTable;

function rowToClass(r: Row): ConnectivityClass & { updatedBy: string | null; updatedAt: number } {
  const match: ConnectivityClass['match'] =
    r.match_kind === 'hardware'
      ? { kind: 'hardware', hardware: r.match_value }
      : r.match_kind === 'tag'
        ? { kind: 'tag', key: r.match_key ?? '', value: r.match_value }
        : { kind: 'group', group: r.match_value };
  return {
    name: r.name,
    match,
    heartbeatIntervalMs: Number(r.heartbeat_interval_ms),
    offlineAfterMs: Number(r.offline_after_ms),
    abandonedAfterMs: Number(r.abandoned_after_ms),
    priority: Number(r.priority),
    updatedBy: r.updated_by,
    updatedAt: Number(r.updated_at),
  };
}

function classToRow(c: ConnectivityClass, actor: string, now: number): Row {
  const m = c.match;
  return {
    name: c.name,
    match_kind: m.kind,
    match_key: m.kind === 'tag' ? m.key : null,
    match_value: m.kind === 'hardware' ? m.hardware : m.kind === 'tag' ? m.value : m.group,
    heartbeat_interval_ms: c.heartbeatIntervalMs,
    offline_after_ms: c.offlineAfterMs,
    abandoned_after_ms: c.abandonedAfterMs,
    priority: c.priority,
    updated_by: actor,
    updated_at: now,
  };
}

async function classesIn(db: Db) {
  const rows = await db.selectFrom('connectivity_classes').selectAll().execute();
  return rows.map(rowToClass).sort(byPrecedence);
}

/** A class's match as a filter over devices; a group that no longer exists matches nothing. */
async function matchOf(db: Db, c: ConnectivityClass): Promise<FilterNode> {
  try {
    return (await expandFilter(db, matchFilter(c.match))) ?? NOTHING;
  } catch (error) {
    if (error instanceof FleetError && error.code === 'FILTER_SYNTAX') return NOTHING;
    throw error;
  }
}

/** Every device whose stored class is not the one its tags, hardware and groups match now gets that one. */
async function resolveIn(db: Db, ctx: TimeContext): Promise<number> {
  const classes = await classesIn(db);
  const figures = new Map(classes.map((c) => [c.name, c]));
  const matches = await Promise.all(classes.map((c) => matchOf(db, c)));
  const resolved = (eb: DeviceEb) =>
    classes.length === 0
      ? sql<string | null>`cast(null as text)`
      : sql<string | null>`case ${sql.join(
          classes.map(
            (c, i) => sql`when ${compileFilter(eb, matches[i]!, ctx)} then cast(${c.name} as text)`,
          ),
          sql` `,
        )} else null end`;
  const moved = await db
    .selectFrom('devices')
    .select((eb) => ['id', resolved(eb).as('resolved')])
    .where((eb) => sql<SqlBool>`${resolved(eb)} is distinct from ${eb.ref('connectivity_class')}`)
    .execute();
  const byClass = new Map<string | null, string[]>();
  for (const r of moved) {
    const ids = byClass.get(r.resolved) ?? [];
    ids.push(r.id);
    byClass.set(r.resolved, ids);
  }
  for (const [name, ids] of byClass) {
    const c = name === null ? undefined : figures.get(name);
    for (let i = 0; i < ids.length; i += MOVE_CHUNK) {
      await db
        .updateTable('devices')
        .set({
          connectivity_class: c?.name ?? null,
          heartbeat_interval_ms: c?.heartbeatIntervalMs ?? null,
          offline_after_ms: c?.offlineAfterMs ?? null,
          abandoned_after_ms: c?.abandonedAfterMs ?? null,
        })
        .where('id', 'in', ids.slice(i, i + MOVE_CHUNK))
        .execute();
    }
  }
  return moved.length;
}

const classEvent = (type: string, at: number, actor: string, data: Record<string, unknown>) => ({
  at,
  type,
  deviceId: null,
  rolloutId: null,
  actor,
  reason: null,
  data,
});

export class SqlConnectivity implements ConnectivityStore {
  constructor(private readonly s: SqlContext) {}

  async list(options: { counts?: boolean } = {}): Promise<StoredConnectivityClass[]> {
    const classes = await classesIn(this.s.db);
    if (options.counts === false || classes.length === 0)
      return classes.map((c) => ({ ...c, deviceCount: 0 }));
    const counts = await this.s.db
      .selectFrom('devices')
      .select((eb) => ['connectivity_class', eb.fn.countAll<number>().as('n')])
      .where('connectivity_class', 'is not', null)
      .groupBy('connectivity_class')
      .execute();
    const n = new Map(counts.map((r) => [r.connectivity_class, Number(r.n)]));
    return classes.map((c) => ({ ...c, deviceCount: n.get(c.name) ?? 0 }));
  }

  async get(name: string): Promise<StoredConnectivityClass | undefined> {
    return (await this.list()).find((c) => c.name === name);
  }

  async set(c: ConnectivityClass, actor: string, ctx: TimeContext) {
    const created = await this.s.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('connectivity_classes')
        .select('name')
        .where('name', '=', c.name)
        .executeTakeFirst();
      const row = classToRow(c, actor, ctx.now);
      if (existing) {
        await trx.updateTable('connectivity_classes').set(row).where('name', '=', c.name).execute();
        // Its devices take the new figures now; those it no longer matches move below.
        await trx
          .updateTable('devices')
          .set({
            heartbeat_interval_ms: c.heartbeatIntervalMs,
            offline_after_ms: c.offlineAfterMs,
            abandoned_after_ms: c.abandonedAfterMs,
          })
          .where('connectivity_class', '=', c.name)
          .execute();
      } else {
        await trx.insertInto('connectivity_classes').values(row).execute();
      }
      await resolveIn(trx, ctx);
      await insertEvents(trx, [
        classEvent('connectivity.class_set', ctx.now, actor, { name: c.name, created: !existing }),
      ]);
      return !existing;
    });
    return { created, class: (await this.get(c.name))! };
  }

  async remove(name: string, actor: string, ctx: TimeContext): Promise<boolean> {
    return this.s.db.transaction().execute(async (trx) => {
      const gone = await trx.deleteFrom('connectivity_classes').where('name', '=', name).executeTakeFirst();
      if (Number(gone.numDeletedRows) === 0) return false;
      await resolveIn(trx, ctx);
      await insertEvents(trx, [classEvent('connectivity.class_removed', ctx.now, actor, { name })]);
      return true;
    });
  }

  /**
   * Outside a transaction: the read of the fleet holds nothing, and each move is a statement of its own. A class
   * changed meanwhile resolves its devices itself; whatever this pass got wrong the next one sets right.
   */
  resolve(ctx: TimeContext): Promise<number> {
    return resolveIn(this.s.db, ctx);
  }
}
