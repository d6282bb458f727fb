/**
 * Maintenance windows set on a group (`group_windows`, one row per group) or on a tag value (`tag_windows`, one
 * row per key and value), and the resolution of the windows each device takes under `window: device_defined`:
 * its own, else its groups', else its tag values' (core/rollout/device-windows.ts, resolveWindows). Each change
 * is written with its event in the same transaction.
 */
import type { Kysely } from 'kysely';
import { FleetError } from '../../core/errors.js';
import {
  type NamedWindows,
  type ResolvedWindows,
  resolveWindows,
} from '../../core/rollout/device-windows.js';
import { normalizeWindow, type WindowInput } from '../../core/rollout/spec.js';
import { windowDocument } from '../../core/rollout/spec-document.js';
import type { MaintenanceWindow } from '../../core/rollout/window.js';
import type { SharedWindows, WindowTarget } from '../device-window-store.js';
import type { Database } from '../schema.js';
import type { TimeContext } from '../store.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';
import { compileFilter } from './filter-sql.js';
import { expandFilter } from './groups.js';

/** The windows of a stored row, normalized (they were checked when set). */
export const storedWindows = (text: string): MaintenanceWindow[] =>
  (JSON.parse(text) as WindowInput[]).map((w, i) => normalizeWindow(w, `windows[${i}]`));

const tagName = (key: string, value: string) => `${key}=${value}`;

const eventOf = (target: WindowTarget, type: 'windows_set' | 'windows_removed') =>
  target.kind === 'group'
    ? { type: `group.${type}`, data: { group: target.name } }
    : { type: `tag.${type}`, data: { tag: target.key, value: target.value } };

async function groupId(trx: Db, name: string): Promise<string | undefined> {
  const g = await trx.selectFrom('device_groups').select('id').where('name', '=', name).executeTakeFirst();
  return g?.id;
}

export async function setShared(
  db: Kysely<Database>,
  target: WindowTarget,
  windows: readonly MaintenanceWindow[],
  actor: string,
  now: number,
): Promise<SharedWindows> {
  const documents = windows.map(windowDocument);
  const text = JSON.stringify(documents);
  await db.transaction().execute(async (trx) => {
    const row = { windows: text, updated_by: actor, updated_at: now };
    if (target.kind === 'group') {
      const id = await groupId(trx, target.name);
      if (id === undefined) {
        throw new FleetError('NOT_FOUND', `group ${target.name} does not exist; fleetd groups ls lists them`);
      }
      await trx
        .insertInto('group_windows')
        .values({ group_id: id, ...row })
        .onConflict((oc) => oc.column('group_id').doUpdateSet(row))
        .execute();
    } else {
      await trx
        .insertInto('tag_windows')
        .values({ tag_key: target.key, tag_value: target.value, ...row })
        .onConflict((oc) => oc.columns(['tag_key', 'tag_value']).doUpdateSet(row))
        .execute();
    }
    const e = eventOf(target, 'windows_set');
    await insertEvents(trx, [
      {
        at: now,
        type: e.type,
        deviceId: null,
        rolloutId: null,
        actor,
        reason: null,
        data: { ...e.data, windows: documents },
      },
    ]);
  });
  return { target, windows: documents as WindowInput[], updatedBy: actor, updatedAt: now };
}

export async function getShared(db: Db, target: WindowTarget): Promise<SharedWindows | undefined> {
  const row =
    target.kind === 'group'
      ? await db
          .selectFrom('group_windows as w')
          .innerJoin('device_groups as g', 'g.id', 'w.group_id')
          .select(['w.windows', 'w.updated_by', 'w.updated_at'])
          .where('g.name', '=', target.name)
          .executeTakeFirst()
      : await db
          .selectFrom('tag_windows')
          .select(['windows', 'updated_by', 'updated_at'])
          .where('tag_key', '=', target.key)
          .where('tag_value', '=', target.value)
          .executeTakeFirst();
  return (
    row && {
      target,
      windows: JSON.parse(row.windows) as WindowInput[],
      updatedBy: row.updated_by,
      updatedAt: Number(row.updated_at),
    }
  );
}

export async function removeShared(
  db: Kysely<Database>,
  target: WindowTarget,
  actor: string,
  now: number,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    let gone: bigint | number = 0;
    if (target.kind === 'group') {
      const id = await groupId(trx, target.name);
      if (id !== undefined) {
        gone = (await trx.deleteFrom('group_windows').where('group_id', '=', id).executeTakeFirst())
          .numDeletedRows;
      }
    } else {
      gone = (
        await trx
          .deleteFrom('tag_windows')
          .where('tag_key', '=', target.key)
          .where('tag_value', '=', target.value)
          .executeTakeFirst()
      ).numDeletedRows;
    }
    if (Number(gone) === 0) return false;
    const e = eventOf(target, 'windows_removed');
    await insertEvents(trx, [
      { at: now, type: e.type, deviceId: null, rolloutId: null, actor, reason: null, data: e.data },
    ]);
    return true;
  });
}

export async function listShared(
  db: Db,
  kind: WindowTarget['kind'],
  query: { after?: string; limit: number },
): Promise<SharedWindows[]> {
  const shaped = (
    target: WindowTarget,
    r: { windows: string; updated_by: string | null; updated_at: number },
  ) => ({
    target,
    windows: JSON.parse(r.windows) as WindowInput[],
    updatedBy: r.updated_by,
    updatedAt: Number(r.updated_at),
  });
  if (kind === 'group') {
    let q = db
      .selectFrom('group_windows as w')
      .innerJoin('device_groups as g', 'g.id', 'w.group_id')
      .select(['g.name', 'w.windows', 'w.updated_by', 'w.updated_at'])
      .orderBy('g.name')
      .limit(query.limit);
    if (query.after !== undefined) q = q.where('g.name', '>', query.after);
    return (await q.execute()).map((r) => shaped({ kind: 'group', name: r.name }, r));
  }
  let q = db.selectFrom('tag_windows').selectAll().orderBy('tag_key').orderBy('tag_value').limit(query.limit);
  if (query.after !== undefined) {
    // `key=value`: a key holds no `=`, so the first one splits it.
    const at = query.after.indexOf('=');
    const key = at < 0 ? query.after : query.after.slice(0, at);
    const value = at < 0 ? '' : query.after.slice(at + 1);
    q = q.where((eb) =>
      eb.or([eb('tag_key', '>', key), eb.and([eb('tag_key', '=', key), eb('tag_value', '>', value)])]),
    );
  }
  return (await q.execute()).map((r) => shaped({ kind: 'tag', key: r.tag_key, value: r.tag_value }, r));
}

/**
 * The windows each device takes: its own, else the union of its groups', else the union of its tag values'.
 * Groups' membership is asked of the database as any `group = NAME` filter is (dynamic groups follow their
 * filter), one query per group with windows for the devices still without any.
 */
export async function resolveShared(
  db: Db,
  deviceIds: readonly string[],
  ctx: TimeContext,
): Promise<Map<string, ResolvedWindows>> {
  const resolved = new Map<string, ResolvedWindows>();
  const ids = [...new Set(deviceIds)];
  const own = new Map<string, MaintenanceWindow[]>();
  for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
    const rows = await db
      .selectFrom('device_windows')
      .select(['device_id', 'windows'])
      .where('device_id', 'in', ids.slice(i, i + INSERT_CHUNK))
      .execute();
    for (const r of rows) own.set(r.device_id, storedWindows(r.windows));
  }
  const rest = ids.filter((id) => !own.has(id));
  const groups = new Map<string, NamedWindows[]>();
  const tags = new Map<string, NamedWindows[]>();
  const add = (to: Map<string, NamedWindows[]>, id: string, w: NamedWindows) => {
    const list = to.get(id);
    if (list) list.push(w);
    else to.set(id, [w]);
  };
  if (rest.length > 0) {
    const withWindows = await db
      .selectFrom('group_windows as w')
      .innerJoin('device_groups as g', 'g.id', 'w.group_id')
      .select(['g.name', 'w.windows'])
      .orderBy('g.name')
      .execute();
    for (const g of withWindows) {
      const named = { name: g.name, windows: storedWindows(g.windows) };
      const member = (await expandFilter(db, { kind: 'group', name: g.name }))!;
      for (let i = 0; i < rest.length; i += INSERT_CHUNK) {
        const rows = await db
          .selectFrom('devices')
          .select('id')
          .where('id', 'in', rest.slice(i, i + INSERT_CHUNK))
          .where((eb) => compileFilter(eb, member, ctx))
          .execute();
        for (const r of rows) add(groups, r.id, named);
      }
    }
  }
  const untagged = rest.filter((id) => !groups.has(id));
  for (let i = 0; i < untagged.length; i += INSERT_CHUNK) {
    const rows = await db
      .selectFrom('device_tags as t')
      .innerJoin('tag_windows as w', (j) =>
        j.onRef('w.tag_key', '=', 't.key').onRef('w.tag_value', '=', 't.value'),
      )
      .select(['t.device_id', 't.key', 't.value', 'w.windows'])
      .where('t.device_id', 'in', untagged.slice(i, i + INSERT_CHUNK))
      .execute();
    for (const r of rows)
      add(tags, r.device_id, { name: tagName(r.key, r.value), windows: storedWindows(r.windows) });
  }
  // Devices taking the same groups' or tags' windows share one list (the dry run plans each list once).
  const shared = new Map<string, MaintenanceWindow[]>();
  for (const id of ids) {
    const r = resolveWindows(own.get(id), groups.get(id) ?? [], tags.get(id) ?? []);
    if (!r) continue;
    if (r.source !== 'device') {
      const key = `${r.source}\n${r.from.join('\n')}`;
      r.windows = shared.get(key) ?? r.windows;
      shared.set(key, r.windows);
    }
    resolved.set(id, r);
  }
  return resolved;
}
