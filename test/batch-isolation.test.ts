/**
 * Batch isolation on each backend: heartbeats and status reports are written in group commit, and one item the
 * database cannot store (a NUL byte in text on PostgreSQL, a number beyond its column) fails alone while the
 * others of its batch are stored and answered. Items go through the server's own batchers, as a route's do.
 */
import fc from 'fast-check';
import { beforeAll, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { FleetError } from '../src/core/errors.js';
import { hashSecret } from '../src/registry/credentials.js';
import { HeartbeatBatcher } from '../src/registry/heartbeat-batcher.js';
import { ReportBatcher } from '../src/registry/report-batcher.js';
import { httpStatus } from '../src/server/errors.js';
import type { Dialect } from '../src/store/migrations.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { PresentedHeartbeat, StatusReport, TimeContext } from '../src/store/store.js';
import { forEachBackend, testRelease } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const at = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });
const secretOf = (id: string) => `secret-of-${id}`;

/** Beyond a 64-bit integer: better-sqlite3 cannot bind it, PostgreSQL's columns cannot hold it. */
const HUGE = (2n ** 70n) as unknown as number;

/** A heartbeat neither database can store: NUL in text (PostgreSQL) and a number SQLite cannot bind. */
function badHeartbeat(id: string): PresentedHeartbeat {
  return {
    heartbeat: { deviceId: id, firmwareVersion: 'bad\u0000version', battery: HUGE },
    credentialHash: hashSecret(secretOf(id)),
  };
}

/** A report's sequence number beyond the int4 column on PostgreSQL, beyond 64 bits on SQLite. */
const badSeq = (dialect: Dialect) => (dialect === 'postgres' ? 3_000_000_000 : HUGE);

/** What the caller of a refused item sees: on PostgreSQL the database names the bad value, a 400. */
function expectRefusal(dialect: Dialect, reason: unknown, deviceId: string): void {
  expect(reason).toBeInstanceOf(Error);
  if (dialect !== 'postgres') return;
  expect(reason).toBeInstanceOf(FleetError);
  const error = reason as FleetError;
  expect(httpStatus(error.code)).toBe(400);
  expect(error.message).toContain(deviceId);
  expect(error.message).toMatch(/cannot store/);
}

async function devices(store: SqlStore, ids: string[]): Promise<void> {
  await store.importDevices(
    ids.map((id) => ({ id, hardwareType: 'hw-a', firmwareVersion: '1.0.0' })),
    at(NOW),
    'test',
  );
  for (const id of ids) await store.setCredential(id, hashSecret(secretOf(id)), at(NOW), 'test');
}

/** Each device's update of `releaseId`, granted (notified), by device id. */
async function granted(store: SqlStore, ids: string[], releaseId: string): Promise<Map<string, string>> {
  const { assigned } = await store.updates.assign(ids, releaseId, { action: 'install' }, at(NOW), 'test');
  await store.updates.offer(ids, at(NOW));
  return new Map(assigned.map((u) => [u.deviceId, u.id]));
}

forEachBackend((backend) => {
  let store: SqlStore;
  let clock: ManualClock;
  let heartbeats: HeartbeatBatcher;
  let reports: ReportBatcher;

  beforeAll(async () => {
    store = await backend.open();
    clock = new ManualClock(NOW);
    heartbeats = new HeartbeatBatcher(store, clock, DEFAULT_THRESHOLDS);
    reports = new ReportBatcher(store, clock, DEFAULT_THRESHOLDS);
    await store.releases.create(testRelease('rel_2', '2.0.0', NOW), 'test');
  });

  it('a heartbeat the database cannot store fails alone; the others of its batch are stored', async () => {
    const ids = ['hb-0', 'hb-1', 'hb-2', 'hb-3'];
    await devices(store, ids);
    clock.advance(1_000);
    // Submitted in one turn of the event loop: one batch.
    const answers = await Promise.allSettled(
      ids.map((id) =>
        heartbeats.submit(
          id === 'hb-2'
            ? badHeartbeat(id)
            : {
                heartbeat: { deviceId: id, firmwareVersion: `2.0.${id.at(-1)}` },
                credentialHash: hashSecret(secretOf(id)),
              },
        ),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expectRefusal(backend.dialect, (answers[2] as PromiseRejectedResult).reason, 'hb-2');
    for (const id of ['hb-0', 'hb-1', 'hb-3']) {
      const device = await store.getDevice(id, at(clock.now()));
      expect(device).toMatchObject({ firmwareVersion: `2.0.${id.at(-1)}`, lastSeen: clock.now() });
    }
    const bad = await store.getDevice('hb-2', at(clock.now()));
    expect(bad).toMatchObject({ firmwareVersion: '1.0.0', lastSeen: null });
  });

  it('a status report the database cannot store fails alone; the others of its batch are written', async () => {
    const ids = ['rp-0', 'rp-1', 'rp-2'];
    await devices(store, ids);
    const updates = await granted(store, ids, 'rel_2');
    const report = (seq: number): StatusReport => ({ seq, state: 'downloading', progress: 10 });
    const answers = await Promise.allSettled(
      ids.map((id) =>
        reports.submit({
          deviceId: id,
          updateId: updates.get(id)!,
          report: report(id === 'rp-1' ? badSeq(backend.dialect) : 1),
        }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expectRefusal(backend.dialect, (answers[1] as PromiseRejectedResult).reason, 'rp-1');
    expect(await store.updates.get(updates.get('rp-0')!)).toMatchObject({ state: 'downloading', lastSeq: 1 });
    expect(await store.updates.get(updates.get('rp-2')!)).toMatchObject({ state: 'downloading', lastSeq: 1 });
    expect(await store.updates.get(updates.get('rp-1')!)).toMatchObject({ state: 'notified', lastSeq: 0 });
  });

  it('property: in any batch with one bad item among good ones, only that item fails', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('heartbeat', 'report'),
        fc.integer({ min: 2, max: 8 }).chain((size) =>
          fc.record({
            bad: fc.integer({ min: 0, max: size - 1 }),
            good: fc.array(fc.integer({ min: 0, max: 999 }), { minLength: size, maxLength: size }),
          }),
        ),
        async (kind, { bad, good }) => {
          run += 1;
          const ids = good.map((_, i) => `p${run}-${i}`);
          await devices(store, ids);
          clock.advance(1_000);
          if (kind === 'heartbeat') {
            const answers = await Promise.allSettled(
              ids.map((id, i) =>
                heartbeats.submit(
                  i === bad
                    ? badHeartbeat(id)
                    : {
                        heartbeat: { deviceId: id, firmwareVersion: `3.${good[i]}.0` },
                        credentialHash: hashSecret(secretOf(id)),
                      },
                ),
              ),
            );
            for (const [i, answer] of answers.entries()) {
              const device = await store.getDevice(ids[i]!, at(clock.now()));
              if (i === bad) {
                expect(answer.status).toBe('rejected');
                expect(device?.lastSeen).toBeNull();
              } else {
                expect(answer.status).toBe('fulfilled');
                expect(device?.firmwareVersion).toBe(`3.${good[i]}.0`);
              }
            }
          } else {
            const updates = await granted(store, ids, 'rel_2');
            const answers = await Promise.allSettled(
              ids.map((id, i) =>
                reports.submit({
                  deviceId: id,
                  updateId: updates.get(id)!,
                  report: { seq: i === bad ? badSeq(backend.dialect) : good[i]! + 1, state: 'downloading' },
                }),
              ),
            );
            for (const [i, answer] of answers.entries()) {
              const update = await store.updates.get(updates.get(ids[i]!)!);
              if (i === bad) {
                expect(answer.status).toBe('rejected');
                expect(update).toMatchObject({ state: 'notified', lastSeq: 0 });
              } else {
                expect(answer).toMatchObject({ status: 'fulfilled', value: { accepted: true } });
                expect(update).toMatchObject({ state: 'downloading', lastSeq: good[i]! + 1 });
              }
            }
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
