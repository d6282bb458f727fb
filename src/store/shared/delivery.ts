/** Agentless delivery settings over Kysely, for both dialects: one row per device, each change with its event. */
import type { Kysely } from 'kysely';
import type { Delivery } from '../../core/delivery.js';
import { FleetError } from '../../core/errors.js';
import type { DeliveryStore, DeviceDelivery } from '../delivery-store.js';
import type { Database, DeviceDeliveryTable } from '../schema.js';
import { insertEvents } from './events.js';

const toDelivery = (r: DeviceDeliveryTable): DeviceDelivery => ({
  deviceId: r.device_id,
  delivery: JSON.parse(r.settings) as Delivery,
  updatedAt: Number(r.updated_at),
});

/** What an event says: the method and where to, never a command's text (it may name paths worth keeping quiet). */
const eventData = (d: Delivery) =>
  d.method === 'ssh' ? { method: d.method, host: d.host, port: d.port, user: d.user } : { method: d.method };

export class SqlDelivery implements DeliveryStore {
  constructor(private readonly db: Kysely<Database>) {}

  async set(deviceId: string, delivery: Delivery, at: number, actor: string): Promise<DeviceDelivery> {
    const row: DeviceDeliveryTable = {
      device_id: deviceId,
      method: delivery.method,
      settings: JSON.stringify(delivery),
      updated_at: at,
    };
    await this.db.transaction().execute(async (trx) => {
      const device = await trx
        .selectFrom('devices')
        .select('id')
        .where('id', '=', deviceId)
        .where('decommissioned_at', 'is', null)
        .executeTakeFirst();
      if (!device) throw new FleetError('DEVICE_NOT_FOUND', `no device ${deviceId} (import it first)`);
      await trx
        .insertInto('device_delivery')
        .values(row)
        .onConflict((oc) =>
          oc.column('device_id').doUpdateSet({ method: row.method, settings: row.settings, updated_at: at }),
        )
        .execute();
      await insertEvents(trx, [
        {
          at,
          type: 'device.delivery_set',
          deviceId,
          rolloutId: null,
          actor,
          reason: null,
          data: eventData(delivery),
        },
      ]);
    });
    return toDelivery(row);
  }

  async remove(deviceId: string, at: number, actor: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const removed = await trx
        .deleteFrom('device_delivery')
        .where('device_id', '=', deviceId)
        .executeTakeFirst();
      if (Number(removed.numDeletedRows) === 0) return false;
      await insertEvents(trx, [
        { at, type: 'device.delivery_removed', deviceId, rolloutId: null, actor, reason: null, data: {} },
      ]);
      return true;
    });
  }

  async get(deviceId: string): Promise<DeviceDelivery | undefined> {
    const row = await this.db
      .selectFrom('device_delivery')
      .selectAll()
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return row ? toDelivery(row) : undefined;
  }

  async list(options: { after?: string; limit: number }): Promise<DeviceDelivery[]> {
    let q = this.db
      .selectFrom('device_delivery as d')
      .innerJoin('devices as v', 'v.id', 'd.device_id')
      .selectAll('d')
      .where('v.decommissioned_at', 'is', null);
    if (options.after !== undefined) q = q.where('d.device_id', '>', options.after);
    const rows = await q.orderBy('d.device_id').limit(options.limit).execute();
    return rows.map(toDelivery);
  }
}
