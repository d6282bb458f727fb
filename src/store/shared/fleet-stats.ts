/** Fleet statistics in shared SQL: counts by status, firmware, hardware and tag, and the snapshots over time. */
import type { Expression, SqlBool } from 'kysely';
import type { DeviceStatus } from '../../core/device.js';
import type { FilterNode } from '../../core/filter/index.js';
import type { SqlContext } from '../adapter.js';
import { byteOrder } from '../byte-order.js';
import type { FleetSnapshot, FleetStats, TimeContext } from '../store.js';
import { type DeviceEb, where as filtered } from './devices.js';
import type { Db } from './events.js';
import { silentBefore } from './filter-sql.js';

/** The filter's devices that are in the fleet: the approval queue (pending, rejected) is counted apart. */
function admitted(filter: FilterNode | undefined, ctx: TimeContext) {
  const where = filtered(filter, ctx);
  return (eb: DeviceEb) => eb.and([where(eb), eb('admission', '=', 'accepted')]);
}

/** Counts by status (derived at `ctx.now`) and of silent devices, in one pass. */
async function statusCounts(db: Db, where: (eb: DeviceEb) => Expression<SqlBool>, ctx: TimeContext) {
  // Each device by its own class's thresholds (docs/connectivity.md), the server-wide ones outside any class.
  const onlineSince = silentBefore('offline_after_ms', ctx);
  const abandonedBefore = silentBefore('abandoned_after_ms', ctx);
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

export async function recordFleetSnapshot(
  s: SqlContext,
  ctx: TimeContext,
  minGapMs?: number,
): Promise<FleetSnapshot | undefined> {
  return s.db.transaction().execute(async (trx) => {
    if (minGapMs !== undefined) {
      // Replicas taking a snapshot at the same moment queue here, so the second one sees the first's.
      await s.adapter.lockTable(trx, 'fleet_snapshots');
      const recent = await trx
        .selectFrom('fleet_snapshots')
        .select('at')
        .where('at', '>', ctx.now - minGapMs)
        .executeTakeFirst();
      if (recent) return undefined;
    }
    const { total, byStatus } = await statusCounts(trx, admitted(undefined, ctx), ctx);
    await trx
      .insertInto('fleet_snapshots')
      .values({ at: ctx.now, total, ...byStatus })
      .onConflict((oc) => oc.column('at').doNothing())
      .execute();
    return { at: ctx.now, total, byStatus };
  });
}

export async function fleetHistory(s: SqlContext, since: number, until: number): Promise<FleetSnapshot[]> {
  const rows = await s.db
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

export async function fleetStats(
  s: SqlContext,
  filter: FilterNode | undefined,
  tagKeys: string[] | undefined,
  ctx: TimeContext,
): Promise<FleetStats> {
  const where = admitted(filter, ctx);
  const { total, byStatus, silent } = await statusCounts(s.db, where, ctx);
  const n = (v: unknown) => Number(v ?? 0);
  const active = (eb: DeviceEb) => eb.and([where(eb), eb('decommissioned_at', 'is', null)]);

  const firmware = await s.db
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

  const hardware = await s.db
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

  let tagQuery = s.db
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
