/**
 * Bulk registration for SQLite: importing devices and issuing their credentials in one transaction as native
 * statements (the simulator registers a million devices this way). Device rows go in one statement each (they
 * are wide: as JSON they cost more to build than to insert); tags, events and credentials, narrow, go in
 * 10,000 to a statement as JSON. The rows are the shared code's (device-row.ts), and so are the events.
 */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import type { DeviceRecord } from '../../core/device.js';
import { type DeviceRow, fleetImportedEvent, newDeviceRow, recordColumns } from '../device-row.js';
import type { ImportResult, TimeContext } from '../store.js';
import type { SqliteEvents } from './events.js';
import { RowUpdates } from './row-updates.js';

/** Every column newDeviceRow fills (the compiler checks none is missing). */
const COLUMNS = Object.keys({
  id: true,
  name: true,
  firmware_version: true,
  firmware_key: true,
  hardware_type: true,
  location: true,
  timezone: true,
  customer: true,
  tags: true,
  last_seen: true,
  recorded_status: true,
  created_at: true,
  updated_at: true,
  decommissioned_at: true,
  credential_hash: true,
  geo_lat: true,
  geo_lon: true,
  battery: true,
  signal_strength: true,
  device_time: true,
  metrics: true,
  admission: true,
  admission_key: true,
  preauthorized: true,
  reboots: true,
  app_crashes: true,
  connectivity_class: true,
  heartbeat_interval_ms: true,
  offline_after_ms: true,
  abandoned_after_ms: true,
} satisfies Record<keyof DeviceRow, true>) as Array<keyof DeviceRow>;

/** Rows per statement. */
const CHUNK = 10_000;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

export class SqliteDevices {
  private readonly insertDevice: Statement<unknown[]>;
  private readonly deleteTags: Statement<[string]>;
  private readonly insertTags: Statement<[string]>;
  private readonly setCredentialHashes: Statement<[number, string], { id: string }>;
  /** The columns a record mentions, written to a known device. */
  private readonly writes: RowUpdates;

  constructor(
    private readonly sqlite: Sqlite,
    private readonly events: SqliteEvents,
  ) {
    // A device already registered is left as it is here and updated below: the insert tells which it was.
    this.insertDevice = sqlite.prepare(
      `INSERT INTO devices (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})
       ON CONFLICT (id) DO NOTHING`,
    );
    this.deleteTags = sqlite.prepare('DELETE FROM device_tags WHERE device_id = ?');
    this.insertTags = sqlite.prepare(
      `INSERT INTO device_tags (device_id, key, value)
       SELECT value ->> 0, value ->> 1, value ->> 2 FROM jsonb_each(jsonb(?))`,
    );
    this.writes = new RowUpdates(sqlite, 'devices');
    this.setCredentialHashes = sqlite.prepare(
      `UPDATE devices SET credential_hash = c.value ->> 1, updated_at = ?
       FROM jsonb_each(jsonb(?)) AS c WHERE devices.id = c.value ->> 0 AND devices.decommissioned_at IS NULL
       RETURNING devices.id`,
    );
  }

  /** A device event of each of these devices, in this order. */
  private deviceEvents(type: string, ids: string[], ctx: TimeContext, actor: string, reason: string | null) {
    this.events.write(
      ids.map((deviceId) => ({ at: ctx.now, type, deviceId, rolloutId: null, actor, reason, data: {} })),
    );
  }

  /** Registers new devices and updates known ones with what each record mentions (Store.importDevices). */
  import(records: DeviceRecord[], ctx: TimeContext, actor: string): ImportResult {
    return this.sqlite
      .transaction(() => {
        const created: DeviceRecord[] = [];
        for (const record of records) {
          const row = newDeviceRow(record, ctx);
          if (this.insertDevice.run(COLUMNS.map((c) => row[c])).changes === 1) {
            created.push(record);
            continue;
          }
          this.writes.run(record.id, { ...recordColumns(record), updated_at: ctx.now });
          // Tags a record mentions replace the device's (a new device has none yet).
          if (record.tags !== undefined) this.deleteTags.run(record.id);
        }
        // A device's tags are those of its last record that mentions tags, as in its `tags` column.
        const tagged = new Map(
          records.flatMap((r) => (r.tags === undefined ? [] : [[r.id, r.tags] as const])),
        );
        const tags = [...tagged].flatMap(([id, pairs]) =>
          Object.entries(pairs).map(([key, value]) => [id, key, value]),
        );
        for (const chunk of chunks(tags)) this.insertTags.run(JSON.stringify(chunk));
        this.deviceEvents(
          'device.registered',
          created.map((r) => r.id),
          ctx,
          actor,
          'import',
        );
        const counts = { created: created.length, updated: records.length - created.length };
        this.events.write([fleetImportedEvent(counts, ctx.now, actor)]);
        return counts;
      })
      .immediate();
  }

  /** Sets each credential of a device registered and not decommissioned; returns the others (Store.setCredentials). */
  setCredentials(
    credentials: ReadonlyArray<{ id: string; credentialHash: string }>,
    ctx: TimeContext,
    actor: string,
  ): { set: number; refused: string[] } {
    return this.sqlite
      .transaction(() => {
        // A device given twice keeps its last credential, as if they were set one after the other.
        const last = new Map(credentials.map((c) => [c.id, c.credentialHash]));
        const set = new Set<string>();
        for (const chunk of chunks([...last])) {
          for (const { id } of this.setCredentialHashes.all(ctx.now, JSON.stringify(chunk))) set.add(id);
        }
        const issued = credentials.filter((c) => set.has(c.id)).map((c) => c.id);
        this.deviceEvents('device.credential_issued', issued, ctx, actor, null);
        return { set: issued.length, refused: credentials.filter((c) => !set.has(c.id)).map((c) => c.id) };
      })
      .immediate();
  }
}
