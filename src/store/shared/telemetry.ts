/**
 * Device telemetry and inventory in shared SQL (docs/telemetry.md). A report writes its raw samples, folds each
 * into its hour's aggregate (an upsert: no roll-up job to fall behind), and replaces the latest values the
 * filter language reads; an inventory replaces the previous one whole. Pruning by age keeps both series
 * bounded; the minimum interval between reports bounds how fast one device fills them.
 */
import { sql } from 'kysely';
import type { DeviceInventory, NetworkInterface, TelemetryRetention } from '../../core/telemetry.js';
import { hourOf, packageVersionKey } from '../../core/telemetry.js';
import type { SqlContext } from '../adapter.js';
import type { TelemetryReport, TelemetrySeries, TelemetrySeriesQuery, TelemetryStore } from '../store.js';
import { type Db, INSERT_CHUNK } from './events.js';

export class SqlTelemetry implements TelemetryStore {
  constructor(private readonly s: SqlContext) {}

  async record(
    deviceId: string,
    report: TelemetryReport,
    now: number,
    minIntervalMs: number,
  ): Promise<{ accepted: boolean; retryAfterMs: number }> {
    return (await this.recordBatch([{ deviceId, report }], now, minIntervalMs))[0]!;
  }

  async recordBatch(
    reports: ReadonlyArray<{ deviceId: string; report: TelemetryReport }>,
    now: number,
    minIntervalMs: number,
  ): Promise<Array<{ accepted: boolean; retryAfterMs: number }>> {
    if (reports.length === 0) return [];
    return this.s.db.transaction().execute(async (trx) => {
      const last = new Map<string, number>();
      const ids = [...new Set(reports.map((r) => r.deviceId))];
      for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
        const rows = await trx
          .selectFrom('telemetry_latest')
          .select((eb) => ['device_id', eb.fn.max('at').as('at')])
          .where('device_id', 'in', ids.slice(i, i + INSERT_CHUNK))
          .groupBy('device_id')
          .execute();
        for (const r of rows) if (r.at !== null) last.set(r.device_id, Number(r.at));
      }
      const answers = reports.map(({ deviceId }) => {
        const previous = last.get(deviceId);
        if (previous !== undefined && (now - previous < minIntervalMs || previous === now)) {
          return { accepted: false, retryAfterMs: previous + minIntervalMs - now };
        }
        last.set(deviceId, now); // a second report of this device in the batch is too soon
        return { accepted: true, retryAfterMs: 0 };
      });
      const taken = reports.filter((_, i) => answers[i]!.accepted);
      await writeSamples(trx, taken, now);
      for (const { deviceId, report } of taken) {
        if (report.inventory) await writeInventory(trx, deviceId, { ...report.inventory, reportedAt: now });
      }
      return answers;
    });
  }

  async latest(deviceId: string): Promise<Array<{ name: string; value: number; at: number }>> {
    const rows = await this.s.db
      .selectFrom('telemetry_latest')
      .select(['name', 'value', 'at'])
      .where('device_id', '=', deviceId)
      .orderBy('name')
      .execute();
    return rows.map((r) => ({ name: r.name, value: Number(r.value), at: Number(r.at) }));
  }

  async series(deviceId: string, q: TelemetrySeriesQuery): Promise<TelemetrySeries[]> {
    const names = q.names;
    if (names !== undefined && names.length === 0) return [];
    const points =
      q.resolution === 'raw'
        ? await this.s.db
            .selectFrom('telemetry_samples')
            .select([
              'name',
              'at',
              'value as min',
              'value as max',
              'value as sum',
              sql<number>`1`.as('count'),
            ])
            .where('device_id', '=', deviceId)
            .where('at', '>=', q.since)
            .where('at', '<', q.until)
            .$if(names !== undefined, (qb) => qb.where('name', 'in', names!))
            .orderBy('at', 'desc')
            .limit(q.limit)
            .execute()
        : await this.s.db
            .selectFrom('telemetry_hourly')
            .select(['name', 'hour as at', 'min', 'max', 'sum', 'count'])
            .where('device_id', '=', deviceId)
            .where('hour', '>=', hourOf(q.since))
            .where('hour', '<', q.until)
            .$if(names !== undefined, (qb) => qb.where('name', 'in', names!))
            .orderBy('hour', 'desc')
            .limit(q.limit)
            .execute();
    const byName = new Map<string, TelemetrySeries>();
    for (const p of points.reverse()) {
      let series = byName.get(p.name);
      if (!series) {
        series = { name: p.name, points: [] };
        byName.set(p.name, series);
      }
      const count = Number(p.count);
      series.points.push({
        at: Number(p.at),
        count,
        min: Number(p.min),
        max: Number(p.max),
        avg: Number(p.sum) / count,
      });
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async inventory(deviceId: string): Promise<DeviceInventory | undefined> {
    const row = await this.s.db
      .selectFrom('device_inventory')
      .selectAll()
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    if (!row) return undefined;
    const packages = await this.s.db
      .selectFrom('device_packages')
      .select(['name', 'version'])
      .where('device_id', '=', deviceId)
      .orderBy('name')
      .execute();
    return {
      os: row.os,
      kernel: row.kernel,
      packages,
      interfaces: JSON.parse(row.interfaces) as NetworkInterface[],
      reportedAt: Number(row.reported_at),
    };
  }

  async prune(
    now: number,
    retention: Pick<TelemetryRetention, 'rawMs' | 'hourlyMs'>,
  ): Promise<{ samples: number; hourly: number }> {
    const samples = await this.s.db
      .deleteFrom('telemetry_samples')
      .where('at', '<', now - retention.rawMs)
      .executeTakeFirst();
    // An hour is kept while any of it is inside the window.
    const hourly = await this.s.db
      .deleteFrom('telemetry_hourly')
      .where('hour', '<', hourOf(now - retention.hourlyMs))
      .executeTakeFirst();
    return { samples: Number(samples.numDeletedRows), hourly: Number(hourly.numDeletedRows) };
  }

  async size(): Promise<{ samples: number; hourly: number; latest: number; packages: number }> {
    const count = async (
      table: 'telemetry_samples' | 'telemetry_hourly' | 'telemetry_latest' | 'device_packages',
    ) => {
      const row = await this.s.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    };
    return {
      samples: await count('telemetry_samples'),
      hourly: await count('telemetry_hourly'),
      latest: await count('telemetry_latest'),
      packages: await count('device_packages'),
    };
  }
}

/** Samples per statement: 6 bound values a row keep a chunk under SQLite's parameter limit. */
const SAMPLE_CHUNK = 1_000;

async function writeSamples(
  db: Db,
  reports: ReadonlyArray<{ deviceId: string; report: TelemetryReport }>,
  at: number,
): Promise<void> {
  const entries = reports.flatMap(({ deviceId, report }) =>
    Object.entries(report.metrics).map(([name, value]) => ({ deviceId, name, value })),
  );
  for (let i = 0; i < entries.length; i += SAMPLE_CHUNK) {
    await writeSampleChunk(db, entries.slice(i, i + SAMPLE_CHUNK), at);
  }
}

async function writeSampleChunk(
  db: Db,
  entries: ReadonlyArray<{ deviceId: string; name: string; value: number }>,
  at: number,
): Promise<void> {
  const hour = hourOf(at);
  await db
    .insertInto('telemetry_samples')
    .values(entries.map(({ deviceId, name, value }) => ({ device_id: deviceId, name, at, value })))
    .onConflict((oc) => oc.columns(['device_id', 'name', 'at']).doNothing())
    .execute();
  await db
    .insertInto('telemetry_hourly')
    .values(
      entries.map(({ deviceId, name, value }) => ({
        device_id: deviceId,
        name,
        hour,
        count: 1,
        sum: value,
        min: value,
        max: value,
      })),
    )
    .onConflict((oc) =>
      oc.columns(['device_id', 'name', 'hour']).doUpdateSet({
        count: sql`${sql.ref('telemetry_hourly.count')} + 1`,
        sum: sql`${sql.ref('telemetry_hourly.sum')} + ${sql.ref('excluded.sum')}`,
        // CASE rather than min()/least(): the one spelling both databases share.
        min: sql`case when ${sql.ref('excluded.min')} < ${sql.ref('telemetry_hourly.min')} then ${sql.ref('excluded.min')} else ${sql.ref('telemetry_hourly.min')} end`,
        max: sql`case when ${sql.ref('excluded.max')} > ${sql.ref('telemetry_hourly.max')} then ${sql.ref('excluded.max')} else ${sql.ref('telemetry_hourly.max')} end`,
      }),
    )
    .execute();
  await db
    .insertInto('telemetry_latest')
    .values(entries.map(({ deviceId, name, value }) => ({ device_id: deviceId, name, value, at })))
    .onConflict((oc) =>
      oc.columns(['device_id', 'name']).doUpdateSet({
        value: (eb) => eb.ref('excluded.value'),
        at: (eb) => eb.ref('excluded.at'),
      }),
    )
    .execute();
}

async function writeInventory(db: Db, deviceId: string, inventory: DeviceInventory): Promise<void> {
  const row = {
    device_id: deviceId,
    os: inventory.os,
    kernel: inventory.kernel,
    interfaces: JSON.stringify(inventory.interfaces),
    reported_at: inventory.reportedAt,
  };
  await db
    .insertInto('device_inventory')
    .values(row)
    .onConflict((oc) =>
      oc.column('device_id').doUpdateSet({
        os: row.os,
        kernel: row.kernel,
        interfaces: row.interfaces,
        reported_at: row.reported_at,
      }),
    )
    .execute();
  await db.deleteFrom('device_packages').where('device_id', '=', deviceId).execute();
  const packages = inventory.packages.map((p) => ({
    device_id: deviceId,
    name: p.name,
    version: p.version,
    version_key: packageVersionKey(p.version),
  }));
  for (let i = 0; i < packages.length; i += INSERT_CHUNK) {
    await db
      .insertInto('device_packages')
      .values(packages.slice(i, i + INSERT_CHUNK))
      .onConflict((oc) => oc.columns(['device_id', 'name']).doNothing())
      .execute();
  }
}
