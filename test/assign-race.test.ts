/**
 * Concurrent assignments over overlapping devices, listed in different orders, on each backend: none fails
 * (PostgreSQL answered "deadlock detected" about one time in six), and every device ends with one open
 * update. And the one place that runs a transaction again when PostgreSQL asks for it (store/transact.ts).
 */
import { expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { mulberry32 } from '../src/core/random.js';
import { MAX_TRANSACTION_RUNS, transact } from '../src/store/shared/transact.js';
import { OPEN_UPDATE_STATES } from '../src/store/shared/updates.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend, testRelease } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const at = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });

const IDS = Array.from({ length: 24 }, (_, i) => `dev-${String(i).padStart(2, '0')}`);

/** A fixed shuffle: every list a different order of (part of) the same devices. */
function orders(round: number): string[][] {
  const rotated = [...IDS.slice(round % IDS.length), ...IDS.slice(0, round % IDS.length)];
  const interleaved = [...IDS.filter((_, i) => i % 2 === 1), ...IDS.filter((_, i) => i % 2 === 0)];
  return [IDS, [...IDS].reverse(), rotated, interleaved, IDS.slice(6, 18).reverse(), rotated.reverse()];
}

async function openUpdatesPerDevice(store: SqlStore): Promise<Map<string, number>> {
  const rows = await store.db
    .selectFrom('device_updates')
    .select(['device_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('state', 'in', OPEN_UPDATE_STATES)
    .groupBy('device_id')
    .execute();
  return new Map(rows.map((r) => [r.device_id, Number(r.n)]));
}

forEachBackend((backend) => {
  it('concurrent assigns over the same devices in different orders all succeed, one open update each', async () => {
    const store = await backend.open();
    await store.importDevices(
      IDS.map((id) => ({ id, hardwareType: 'hw-a', firmwareVersion: '1.0.0' })),
      at(NOW),
      'test',
    );
    await store.releases.create(testRelease('rel_2', '2.0.0', NOW), 'test');
    await store.releases.create(testRelease('rel_3', '3.0.0', NOW), 'test');
    for (let round = 0; round < 12; round++) {
      // Each pending update supersedes the last: every assign locks every device's open update row.
      const answers = await Promise.allSettled(
        orders(round).map((ids, i) =>
          store.updates.assign(
            ids,
            (round + i) % 2 === 0 ? 'rel_2' : 'rel_3',
            { action: 'install' },
            at(NOW + round),
            'test',
          ),
        ),
      );
      const failed = answers.flatMap((a) => (a.status === 'rejected' ? [String(a.reason)] : []));
      expect(failed).toEqual([]);
      expect([...(await openUpdatesPerDevice(store)).values()]).toEqual(IDS.map(() => 1));
    }
  });

  it.runIf(backend.name === 'postgres')(
    'a transaction PostgreSQL aborts as a deadlock is run again, and both sides commit',
    async () => {
      const store = await backend.open();
      await store.importDevices([{ id: 'a' }, { id: 'b' }], at(NOW), 'test');
      let runs = 0;
      let arrived = 0;
      let bothHoldOne!: () => void;
      const barrier = new Promise<void>((resolve) => {
        bothHoldOne = resolve;
      });
      // Each takes one row's lock, waits until the other holds the other row, then asks for it: a deadlock.
      const random = mulberry32(14);
      const rename = (first: string, second: string) =>
        transact(
          store.db,
          async (trx) => {
            runs += 1;
            await trx
              .updateTable('devices')
              .set({ name: `by-${first}` })
              .where('id', '=', first)
              .execute();
            if (++arrived === 2) bothHoldOne();
            await barrier;
            await trx
              .updateTable('devices')
              .set({ name: `by-${first}` })
              .where('id', '=', second)
              .execute();
            return first;
          },
          random,
        );
      expect(await Promise.all([rename('a', 'b'), rename('b', 'a')])).toEqual(['a', 'b']);
      expect(runs).toBe(3);
      expect(MAX_TRANSACTION_RUNS).toBeGreaterThan(1);
    },
  );
});
