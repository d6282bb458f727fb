/**
 * The device registry in shared SQL: import, reads and listing, decommissioning and credentials. Enrollment
 * (a device registering itself with a token) is in enroll.ts; heartbeats in heartbeats.ts.
 */
import type { Expression, ExpressionBuilder, SqlBool } from 'kysely';
import type { Device, DeviceRecord } from '../../core/device.js';
import { FleetError } from '../../core/errors.js';
import type { FilterNode } from '../../core/filter/index.js';
import type { SqlContext } from '../adapter.js';
import { fleetImportedEvent, newDeviceRow, recordColumns, rowToDevice } from '../device-row.js';
import { statusEvent } from '../heartbeat-effects.js';
import type { Database } from '../schema.js';
import type { DevicePage, DeviceQuery, ImportResult, NewEvent, TimeContext } from '../store.js';
import { revokeCertificates } from './certificates.js';
import { decodeCursor, encodeCursor, sortExpression } from './device-sort.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';
import { compileFilter } from './filter-sql.js';
import { moveUpdates } from './update-state-writer.js';
import { OPEN_UPDATE_STATES } from './updates.js';

export type DeviceEb = ExpressionBuilder<Database, 'devices'>;

/** The devices a filter names at `ctx.now` (every device without one). */
export function where(filter: FilterNode | undefined, ctx: TimeContext) {
  return (eb: DeviceEb): Expression<SqlBool> => (filter ? compileFilter(eb, filter, ctx) : eb.lit(true));
}

/** The devices' tags become these (a device missing from `tagsById` has none). */
export async function replaceTags(
  db: Db,
  deviceIds: string[],
  tagsById: Map<string, Record<string, string>>,
) {
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

export async function importDevices(
  s: SqlContext,
  records: DeviceRecord[],
  ctx: TimeContext,
  actor: string,
): Promise<ImportResult> {
  return s.db.transaction().execute(async (trx) => {
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
      await replaceTags(
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

export async function getDevice(s: SqlContext, id: string, ctx: TimeContext): Promise<Device | undefined> {
  const row = await s.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
  return row && rowToDevice(row, ctx);
}

export async function listDevices(s: SqlContext, query: DeviceQuery): Promise<DevicePage> {
  const sort = query.sort ?? 'id';
  const desc = query.descending ?? false;
  const key = sortExpression(sort);
  let q = s.db.selectFrom('devices').selectAll().where(where(query.filter, query));
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

export async function countDevices(
  s: SqlContext,
  filter: FilterNode | undefined,
  ctx: TimeContext,
): Promise<number> {
  const row = await s.db
    .selectFrom('devices')
    .select((eb) => eb.fn.countAll().as('n'))
    .where(where(filter, ctx))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function decommissionDevice(
  s: SqlContext,
  id: string,
  ctx: TimeContext,
  actor: string,
): Promise<Device> {
  return s.db.transaction().execute(async (trx) => {
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
    // Its certificates stop working in the same transaction: no window where a retired device still gets in.
    await revokeCertificates(trx, id, ctx.now, actor, 'device decommissioned');
    // A retired device never reports again: its open updates end here, or they would stay open forever
    // (holding a download slot, keeping their release from being deleted). That includes installs under
    // way, which an operator cannot cancel on a live device.
    let open = trx
      .selectFrom('device_updates')
      .select(['id', 'state', 'rollout_id'])
      .where('device_id', '=', id)
      .where('state', 'in', OPEN_UPDATE_STATES);
    open = s.adapter.lockRowsForUpdate(open.orderBy('id'));
    const updates = await open.execute();
    const moved: NewEvent[] = [];
    await moveUpdates(
      trx,
      updates.map((u) => ({ ...u, device_id: id })),
      'cancelled',
      { error: 'device decommissioned', finished_at: ctx.now },
      { at: ctx.now, actor, reason: 'device decommissioned', rule: 'decommission' },
      moved,
    );
    await insertEvents(trx, [
      { ...statusEvent(id, from, 'decommissioned', ctx.now, 'decommissioned by operator'), actor },
      ...moved,
    ]);
    return rowToDevice({ ...row, decommissioned_at: ctx.now, credential_hash: null }, ctx);
  });
}

export async function setCredential(
  s: SqlContext,
  id: string,
  credentialHash: string,
  ctx: TimeContext,
  actor: string,
): Promise<void> {
  await s.db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('devices')
      .select(['decommissioned_at', 'admission'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new FleetError('DEVICE_NOT_FOUND', `device ${id} is not registered`);
    if (row.decommissioned_at !== null) {
      throw new FleetError('DEVICE_DECOMMISSIONED', `device ${id} is decommissioned`);
    }
    // A device in the approval queue gets its credential from the queue, once accepted, and from nowhere else.
    if (row.admission !== 'accepted') {
      throw new FleetError(
        'TRANSITION_NOT_ALLOWED',
        `device ${id} is ${row.admission}: accept it (\`fleetd devices accept ${id}\`) and it gets its own credential`,
      );
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

export async function setCredentials(
  s: SqlContext,
  credentials: ReadonlyArray<{ id: string; credentialHash: string }>,
  ctx: TimeContext,
  actor: string,
): Promise<{ set: number; refused: string[] }> {
  return s.db.transaction().execute(async (trx) => {
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

export async function credentialHash(s: SqlContext, id: string): Promise<string | undefined> {
  const row = await s.db
    .selectFrom('devices')
    .select(['credential_hash', 'decommissioned_at', 'admission'])
    .where('id', '=', id)
    .executeTakeFirst();
  // Only a device in the fleet authenticates: not one waiting for approval, nor a rejected one.
  if (!row || row.decommissioned_at !== null || row.admission !== 'accepted') return undefined;
  return row.credential_hash ?? undefined;
}
