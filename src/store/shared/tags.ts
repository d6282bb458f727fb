/**
 * Tag edits in shared SQL: one edit (set some keys, remove others) applied to devices by id or by filter, in one
 * transaction, with a `device.tagged` event (before and after) for each device it changed. A device the edit
 * cannot apply to (unknown, decommissioned, too many tags) gets its own error and never fails the others.
 */
import type { FleetError } from '../../core/errors.js';
import type { FilterNode } from '../../core/filter/index.js';
import { applyTagEdit, type TagEdit } from '../../core/tag-edit.js';
import type { SqlContext } from '../adapter.js';
import type { NewEvent, TagResult, TagStore, TimeContext } from '../store.js';
import { lockDevices } from './device-locks.js';
import { selectedDeviceIds } from './device-selection.js';
import { replaceTags } from './devices.js';
import { INSERT_CHUNK, insertEvents } from './events.js';

/** At most this many devices change in one edit by filter. */
export const MAX_TAG_EDIT = 10_000;

const parseTags = (text: string): Record<string, string> => JSON.parse(text) as Record<string, string>;

export class SqlTags implements TagStore {
  constructor(private readonly s: SqlContext) {}

  edit(
    edit: TagEdit,
    selection: { ids: string[] } | { filter: FilterNode },
    ctx: TimeContext,
    actor: string,
  ): Promise<TagResult[]> {
    return this.s.db.transaction().execute(async (trx) => {
      const ids = await selectedDeviceIds(trx, selection, ctx, MAX_TAG_EDIT);
      // Two edits of one device at once would each read the old tags: the second waits for the first.
      if (this.s.adapter.locksRows) await lockDevices(trx, ids);
      const found = new Map<string, { tags: string; decommissioned_at: number | null }>();
      for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
        const rows = await trx
          .selectFrom('devices')
          .select(['id', 'tags', 'decommissioned_at'])
          .where('id', 'in', ids.slice(i, i + INSERT_CHUNK))
          .execute();
        for (const r of rows) found.set(r.id, r);
      }
      const results: TagResult[] = [];
      const changed = new Map<string, Record<string, string>>();
      const events: NewEvent[] = [];
      const refuse = (id: string, code: FleetError['code'], message: string) =>
        results.push({ id, ok: false, error: { code, message } });
      for (const id of ids) {
        const row = found.get(id);
        if (!row) refuse(id, 'DEVICE_NOT_FOUND', `device ${id} does not exist`);
        else if (row.decommissioned_at !== null) {
          refuse(id, 'DEVICE_DECOMMISSIONED', `device ${id} is decommissioned`);
        } else {
          const before = parseTags(row.tags);
          const outcome = applyTagEdit(before, edit);
          if (!outcome.ok) refuse(id, 'VALIDATION', `device ${id}: ${outcome.message}`);
          else {
            results.push({ id, ok: true, tags: outcome.after, changed: outcome.changed });
            if (outcome.changed) {
              changed.set(id, outcome.after);
              events.push({
                at: ctx.now,
                type: 'device.tagged',
                deviceId: id,
                rolloutId: null,
                actor,
                reason: null,
                data: { before, after: outcome.after },
              });
            }
          }
        }
      }
      for (const [id, tags] of changed) {
        await trx
          .updateTable('devices')
          .set({ tags: JSON.stringify(tags), updated_at: ctx.now })
          .where('id', '=', id)
          .execute();
      }
      const changedIds = [...changed.keys()];
      for (let i = 0; i < changedIds.length; i += INSERT_CHUNK) {
        await replaceTags(trx, changedIds.slice(i, i + INSERT_CHUNK), changed);
      }
      await insertEvents(trx, events);
      return results;
    });
  }
}
