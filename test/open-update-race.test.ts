/**
 * A device holds at most one open update, and the database says so (migration 0014, the unique partial index
 * device_updates_one_open). Two replicas (two stores on one PostgreSQL database) assigning, creating rollouts
 * and offering for the same devices at once never leave a device with two, and no caller sees a database
 * error: the loser of a race runs again and supersedes the winner (store/shared/transact.ts), or is told
 * OPEN_UPDATE_EXISTS (409). SQLite serializes its writers in one process; there the same commands race on one
 * store. Random choices come from a recorded seed.
 */
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql } from 'kysely';
import { expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { isFleetError } from '../src/core/errors.js';
import { mulberry32 } from '../src/core/random.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { createRollout } from '../src/engine/rollout-service.js';
import { httpStatus } from '../src/server/errors.js';
import { migrateToLatest, migrationsFor } from '../src/store/migrations.js';
import type { Database } from '../src/store/schema.js';
import { transact } from '../src/store/shared/transact.js';
import { OPEN_UPDATE_STATES } from '../src/store/shared/updates.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend, testRelease } from './support/stores.js';

const NOW = Date.UTC(2026, 2, 2, 9, 0, 0);
const at = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });
const IDS = Array.from({ length: 8 }, (_, i) => `dev-${i}`);
const SEED = 1_409;
/** On PostgreSQL a round where a rollout and an assign deadlock waits for the server's deadlock_timeout (1 s). */
const ROUNDS = 20;

async function openPerDevice(store: SqlStore): Promise<number[]> {
  const rows = await store.db
    .selectFrom('device_updates')
    .select(['device_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('state', 'in', OPEN_UPDATE_STATES)
    .groupBy('device_id')
    .execute();
  return rows.map((r) => Number(r.n));
}

/** What a caller would see: nothing, or a FleetError whose status is a 4xx. Anything else is returned. */
function unexpected(results: PromiseSettledResult<unknown>[]): string[] {
  return results.flatMap((r) => {
    if (r.status === 'fulfilled') return [];
    const e = r.reason as unknown;
    if (isFleetError(e) && httpStatus(e.code) < 500) return [];
    return [String(e)];
  });
}

async function seed(store: SqlStore): Promise<void> {
  await store.importDevices(
    IDS.map((id) => ({ id, hardwareType: 'hw-a', firmwareVersion: '1.0.0' })),
    at(NOW),
    'test',
  );
  await store.releases.create(testRelease('rel_2', '2.0.0', NOW), 'test');
  await store.releases.create(testRelease('rel_3', '3.0.0', NOW), 'test');
}

forEachBackend((backend) => {
  it('racing assigns, rollouts and offers leave at most one open update per device, and no 5xx', async () => {
    // Two replicas on PostgreSQL; on SQLite one store (one process holds the file's writer).
    const [a, b] =
      backend.dialect === 'postgres' ? await backend.openPair() : ([await backend.open()] as const);
    const replicas = b === undefined ? [a] : [a, b];
    await seed(a);
    const random = mulberry32(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    let rollouts = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const now = NOW + round * 1_000;
      const ops = Array.from({ length: 6 }, () => {
        const store = pick(replicas);
        const release = pick(['rel_2', 'rel_3']);
        const devices = IDS.filter(() => random() < 0.4);
        const kind = random();
        if (kind < 0.6) {
          const list = devices.length > 0 ? devices : [pick(IDS)];
          return () => store.updates.assign(list, release, { action: 'install' }, at(now), 'op');
        }
        if (kind < 0.85) {
          const spec = parseRolloutSpec({
            name: `race-${rollouts++}`,
            release: release === 'rel_2' ? 'fw@2.0.0' : 'fw@3.0.0',
            filter: '',
            strategy: 'immediate',
            seed: 3,
          });
          return () => createRollout(store, spec, at(now), 'op');
        }
        return () => store.updates.offer(devices.length > 0 ? devices : IDS, at(now));
      });
      const results = await Promise.allSettled(ops.map((op) => op()));
      expect(unexpected(results), `round ${round}`).toEqual([]);
      expect(
        (await openPerDevice(a)).every((n) => n === 1),
        `round ${round}`,
      ).toBe(true);
    }
  }, 120_000);

  it('a second open update of a device is refused by the database and answered OPEN_UPDATE_EXISTS', async () => {
    const store = await backend.open();
    await seed(store);
    const [first] = (await store.updates.assign(['dev-0'], 'rel_2', { action: 'install' }, at(NOW), 'op'))
      .assigned;
    const row = await store.db
      .selectFrom('device_updates')
      .selectAll()
      .where('id', '=', first!.id)
      .executeTakeFirstOrThrow();
    // Written past the writers (as a replica that did not supersede would): the index refuses it.
    const second = transact(store.db, (trx) =>
      trx
        .insertInto('device_updates')
        .values({ ...row, id: 'upd_second', state: 'scheduled' })
        .execute(),
    );
    await expect(second).rejects.toMatchObject({ code: 'OPEN_UPDATE_EXISTS' });
    // A final update beside the open one is fine.
    await store.db
      .insertInto('device_updates')
      .values({ ...row, id: 'upd_done', state: 'succeeded' })
      .execute();
  });
});

it('migration 0014 keeps the newest open update of each device and cancels the others with an event', async () => {
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }),
  });
  try {
    const all = migrationsFor('sqlite');
    const before = Object.fromEntries(Object.entries(all).filter(([name]) => name < '0014'));
    const { error } = await new Migrator({
      db,
      provider: { getMigrations: async () => before },
    }).migrateToLatest();
    expect(error).toBeUndefined();
    await sql`insert into devices (id, name, recorded_status, created_at, updated_at)
      values ('d1', 'd1', 'online', 0, 0), ('d2', 'd2', 'online', 0, 0)`.execute(db);
    await sql`insert into releases (id, name, version, version_key, type, hardware, size, sha256, manifest, signature,
      key_id, created_at) values ('r', 'fw', '2.0.0', '2', 'firmware', '[]', 1, '', '{}', '', '', 0)`.execute(
      db,
    );
    const update = (id: string, device: string, state: string, created: number) =>
      sql`insert into device_updates (id, device_id, release_id, state, action, created_at, updated_at)
        values (${id}, ${device}, 'r', ${state}, 'install', ${created}, ${created})`.execute(db);
    await update('u1', 'd1', 'pending', 1);
    await update('u2', 'd1', 'notified', 2);
    await update('u3', 'd1', 'scheduled', 3);
    await update('u4', 'd1', 'failed', 4);
    await update('u5', 'd2', 'pending', 1);
    await migrateToLatest(db, 'sqlite');
    const states = await db.selectFrom('device_updates').select(['id', 'state']).orderBy('id').execute();
    expect(states.map((s) => `${s.id}:${s.state}`)).toEqual([
      'u1:cancelled',
      'u2:cancelled',
      'u3:scheduled',
      'u4:failed',
      'u5:pending',
    ]);
    const events = await db
      .selectFrom('events')
      .select(['type', 'device_id', 'data'])
      .orderBy('id')
      .execute();
    expect(events.map((e) => [e.type, e.device_id, JSON.parse(e.data)])).toEqual([
      ['update.cancelled', 'd1', { update: 'u1', from: 'pending', to: 'cancelled' }],
      ['update.cancelled', 'd1', { update: 'u2', from: 'notified', to: 'cancelled' }],
    ]);
  } finally {
    await db.destroy();
  }
});
