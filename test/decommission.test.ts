/** Decommissioning a device ends its open updates, on every backend. */
import { beforeEach, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend, testRelease } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const ctx: TimeContext = { now: NOW, thresholds: DEFAULT_THRESHOLDS };

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
    await store.importDevices(
      ['waiting', 'notified', 'downloading', 'installing', 'done'].map((id) => ({
        id,
        hardwareType: 'hw-a',
        firmwareVersion: '1.0.0',
        lastSeen: NOW,
      })),
      ctx,
      'test',
    );
    await store.releases.create(testRelease('rel-2', '2.0.0', NOW), 'test');
  });

  it('decommissioning cancels every open update of the device with its event; its release can then be deleted', async () => {
    const { assigned } = await store.updates.assign(
      ['waiting', 'notified', 'downloading', 'installing', 'done'],
      'rel-2',
      { action: 'install' },
      ctx,
      'test',
    );
    const id = (device: string) => assigned.find((u) => u.deviceId === device)!.id;
    await store.updates.offer(['notified', 'downloading', 'installing', 'done'], ctx);
    await store.updates.report('downloading', id('downloading'), { seq: 1, state: 'downloading' }, ctx);
    await store.updates.report('installing', id('installing'), { seq: 1, state: 'installing' }, ctx);
    await store.updates.report('done', id('done'), { seq: 1, state: 'succeeded' }, ctx);

    for (const device of ['waiting', 'notified', 'downloading', 'installing', 'done']) {
      await store.decommissionDevice(device, ctx, 'api:admin');
    }

    for (const [device, from] of [
      ['waiting', 'pending'],
      ['notified', 'notified'],
      ['downloading', 'downloading'],
      ['installing', 'installing'],
    ] as const) {
      expect(await store.updates.get(id(device))).toMatchObject({ state: 'cancelled', finishedAt: NOW });
      const events = await store.listEvents({ deviceId: device, typePrefix: 'update.cancelled', limit: 10 });
      expect(events.map((e) => [e.actor, e.reason, e.data])).toEqual([
        ['api:admin', 'device decommissioned', { update: id(device), from, to: 'cancelled' }],
      ]);
    }
    expect(await store.updates.get(id('done'))).toMatchObject({ state: 'succeeded' });
    expect(await store.listEvents({ deviceId: 'done', typePrefix: 'update.cancelled', limit: 10 })).toEqual(
      [],
    );
    await store.releases.delete('rel-2', NOW, 'test');
  });
});
