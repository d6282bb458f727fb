/**
 * Telemetry and inventory in the store, on every backend: a report's samples, hourly aggregates and latest values;
 * reports faster than the minimum interval refused; the inventory replaced whole; pruning by the injected clock
 * keeps raw samples for their window and hourly aggregates for theirs; the filter language reads what was
 * reported.
 */
import { beforeEach, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseFilter } from '../src/core/filter/index.js';
import { DEFAULT_TELEMETRY_RETENTION, HOUR_MS } from '../src/core/telemetry.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const MINUTE = 60_000;
const DAY = 24 * HOUR_MS;
const ctx = { now: NOW, thresholds: DEFAULT_THRESHOLDS };
const bookworm = {
  os: 'Debian GNU/Linux 12 (bookworm)',
  kernel: '6.1.0-18-amd64',
  packages: [
    { name: 'openssl', version: '3.0.9-1' },
    { name: 'libc6', version: '2.36-9+deb12u4' },
  ],
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', addresses: ['10.0.0.5/24'] }],
};

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
    await store.importDevices([{ id: 'pos-1' }, { id: 'pos-2' }, { id: 'pos-3' }], ctx, 'test');
  });

  const ids = async (filter: string) =>
    (await store.listDevices({ ...ctx, filter: parseFilter(filter), limit: 100 })).devices.map((d) => d.id);

  it('keeps raw samples, folds them into hourly aggregates and remembers the latest value', async () => {
    for (const [i, cpu] of [10, 30, 20].entries()) {
      const r = await store.telemetry.record(
        'pos-1',
        { metrics: { cpu_pct: cpu, temp_c: 40 + i } },
        NOW + i * 5 * MINUTE,
        MINUTE,
      );
      expect(r.accepted).toBe(true);
    }
    const raw = await store.telemetry.series('pos-1', {
      resolution: 'raw',
      since: NOW - HOUR_MS,
      until: NOW + HOUR_MS,
      names: ['cpu_pct'],
      limit: 100,
    });
    expect(raw).toEqual([
      {
        name: 'cpu_pct',
        points: [10, 30, 20].map((v, i) => ({ at: NOW + i * 5 * MINUTE, count: 1, min: v, max: v, avg: v })),
      },
    ]);
    const hourly = await store.telemetry.series('pos-1', {
      resolution: 'hourly',
      since: NOW,
      until: NOW + HOUR_MS,
      limit: 100,
    });
    expect(hourly.map((s) => s.name)).toEqual(['cpu_pct', 'temp_c']);
    expect(hourly[0]!.points).toEqual([{ at: NOW, count: 3, min: 10, max: 30, avg: 20 }]);
    expect(await store.telemetry.latest('pos-1')).toEqual([
      { name: 'cpu_pct', value: 20, at: NOW + 10 * MINUTE },
      { name: 'temp_c', value: 42, at: NOW + 10 * MINUTE },
    ]);
  });

  it('refuses a report sooner than the minimum interval, saying how long to wait', async () => {
    await store.telemetry.record('pos-1', { metrics: { cpu_pct: 1 } }, NOW, MINUTE);
    expect(await store.telemetry.record('pos-1', { metrics: { cpu_pct: 2 } }, NOW + 20_000, MINUTE)).toEqual({
      accepted: false,
      retryAfterMs: 40_000,
    });
    // Another device is not held back by it.
    expect(
      (await store.telemetry.record('pos-2', { metrics: { cpu_pct: 2 } }, NOW + 20_000, MINUTE)).accepted,
    ).toBe(true);
    expect((await store.telemetry.size()).samples).toBe(2);
  });

  it('writes a batch of reports in one go, taking only the first of a device within it', async () => {
    await store.telemetry.record('pos-3', { metrics: { cpu_pct: 1 } }, NOW - 30_000, MINUTE);
    const answers = await store.telemetry.recordBatch(
      [
        { deviceId: 'pos-1', report: { metrics: { cpu_pct: 10 } } },
        { deviceId: 'pos-2', report: { metrics: { cpu_pct: 20 }, inventory: bookworm } },
        { deviceId: 'pos-1', report: { metrics: { cpu_pct: 99 } } },
        { deviceId: 'pos-3', report: { metrics: { cpu_pct: 30 } } },
      ],
      NOW,
      MINUTE,
    );
    expect(answers).toEqual([
      { accepted: true, retryAfterMs: 0 },
      { accepted: true, retryAfterMs: 0 },
      { accepted: false, retryAfterMs: MINUTE },
      { accepted: false, retryAfterMs: 30_000 },
    ]);
    expect((await store.telemetry.latest('pos-1')).map((l) => l.value)).toEqual([10]);
    expect((await store.telemetry.inventory('pos-2'))?.os).toBe(bookworm.os);
  });

  it('replaces the inventory whole and answers the inventory filters', async () => {
    await store.telemetry.record('pos-1', { metrics: {}, inventory: bookworm }, NOW, MINUTE);
    await store.telemetry.record(
      'pos-2',
      {
        metrics: {},
        inventory: {
          ...bookworm,
          os: 'Debian 12',
          packages: [{ name: 'openssl', version: '3.0.11-1~deb12u2' }],
        },
      },
      NOW,
      MINUTE,
    );
    expect(await store.telemetry.inventory('pos-1')).toEqual({
      ...bookworm,
      packages: [bookworm.packages[1], bookworm.packages[0]],
      reportedAt: NOW,
    });
    expect(await ids('inventory.package.openssl < 3.0.11')).toEqual(['pos-1']);
    expect(await ids('inventory.os = "Debian 12"')).toEqual(['pos-2']);
    expect(await ids('inventory.package.libc6 != *')).toEqual(['pos-2', 'pos-3']);

    await store.telemetry.record(
      'pos-1',
      { metrics: {}, inventory: { ...bookworm, packages: [{ name: 'openssl', version: '3.0.13-1' }] } },
      NOW + MINUTE,
      MINUTE,
    );
    expect((await store.telemetry.inventory('pos-1'))?.packages).toEqual([
      { name: 'openssl', version: '3.0.13-1' },
    ]);
    expect(await ids('inventory.package.openssl < 3.0.11')).toEqual([]);
    expect(await store.telemetry.inventory('pos-3')).toBeUndefined();
  });

  it('filters on the latest telemetry value', async () => {
    await store.telemetry.record('pos-1', { metrics: { disk_free_pct: 5 } }, NOW, MINUTE);
    await store.telemetry.record('pos-2', { metrics: { disk_free_pct: 50 } }, NOW, MINUTE);
    expect(await ids('telemetry.disk_free_pct < 10')).toEqual(['pos-1']);
    await store.telemetry.record('pos-1', { metrics: { disk_free_pct: 12 } }, NOW + MINUTE, MINUTE);
    expect(await ids('telemetry.disk_free_pct < 10')).toEqual([]);
    expect(await ids('not telemetry.disk_free_pct > 20')).toEqual(['pos-1', 'pos-3']);
  });

  it('prunes raw samples after 48 h and hourly aggregates after 90 days, by the clock it is given', async () => {
    await store.telemetry.record('pos-1', { metrics: { cpu_pct: 1 } }, NOW, MINUTE);
    await store.telemetry.record('pos-1', { metrics: { cpu_pct: 2 } }, NOW + 3 * DAY, MINUTE);
    expect(await store.telemetry.size()).toMatchObject({ samples: 2, hourly: 2, latest: 1 });
    expect(await store.telemetry.prune(NOW + 3 * DAY, DEFAULT_TELEMETRY_RETENTION)).toEqual({
      samples: 1,
      hourly: 0,
    });
    expect(await store.telemetry.prune(NOW + 91 * DAY, DEFAULT_TELEMETRY_RETENTION)).toEqual({
      samples: 1,
      hourly: 1,
    });
    expect(await store.telemetry.size()).toMatchObject({ samples: 0, hourly: 1, latest: 1 });
  });
});
