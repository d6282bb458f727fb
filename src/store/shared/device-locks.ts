/**
 * Where rows are locked (PostgreSQL), every writer that supersedes or inserts open updates first locks the
 * devices' rows, in id order: two such writers over shared devices then queue instead of each waiting for a
 * lock the other holds (a deadlock), and the second one reads the first one's update.
 */
import { byteOrder } from '../byte-order.js';
import { type Db, INSERT_CHUNK } from './events.js';

export async function lockDevices(trx: Db, deviceIds: readonly string[]): Promise<void> {
  const ordered = [...new Set(deviceIds)].sort(byteOrder);
  for (let i = 0; i < ordered.length; i += INSERT_CHUNK) {
    await trx
      .selectFrom('devices')
      .select('id')
      .where('id', 'in', ordered.slice(i, i + INSERT_CHUNK))
      .orderBy('id')
      .forUpdate()
      .execute();
  }
}
