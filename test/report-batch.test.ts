/**
 * Device reports taken in a batch (group commit), on each backend: every report is taken or refused on its
 * own, a refused one writes nothing, and the batch's accepted reports are all written with their events.
 */
import { expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { FleetError } from '../src/core/errors.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend, testRelease } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const at = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });

/** Three devices, each with an update of fw@2.0.0 granted (notified). */
async function granted(store: SqlStore): Promise<Map<string, string>> {
  await store.importDevices(
    ['d1', 'd2', 'd3'].map((id) => ({ id, hardwareType: 'hw-a', firmwareVersion: '1.0.0' })),
    at(NOW),
    'test',
  );
  await store.releases.create(testRelease('rel_2', '2.0.0', NOW), 'test');
  const { assigned } = await store.updates.assign(
    ['d1', 'd2', 'd3'],
    'rel_2',
    { action: 'install' },
    at(NOW),
    'test',
  );
  const offers = await store.updates.offer(['d1', 'd2', 'd3'], at(NOW));
  expect([...offers.values()].flat().map((o) => o.update.state)).toEqual([
    'notified',
    'notified',
    'notified',
  ]);
  return new Map(assigned.map((u) => [u.deviceId, u.id]));
}

forEachBackend((backend) => {
  it('takes or refuses each report of a batch on its own, writing only what it took', async () => {
    const store = await backend.open();
    const ids = await granted(store);
    const answers = await store.updates.reportBatch(
      [
        { deviceId: 'd1', updateId: ids.get('d1')!, report: { seq: 1, state: 'downloading', progress: 10 } },
        // d2 skips ahead on the forward path, straight to succeeded.
        { deviceId: 'd2', updateId: ids.get('d2')!, report: { seq: 1, state: 'succeeded' } },
        // Another device's update: refused as not found, and nothing of it is written.
        { deviceId: 'd3', updateId: ids.get('d1')!, report: { seq: 5, state: 'failed', error: 'x' } },
        // The same device twice in one batch: the second, with a lower sequence number, changes nothing.
        { deviceId: 'd1', updateId: ids.get('d1')!, report: { seq: 0, state: 'failed' } },
      ],
      at(NOW + 1000),
    );
    expect(answers[0]).toEqual({ accepted: true, state: 'downloading' });
    expect(answers[1]).toEqual({ accepted: true, state: 'succeeded' });
    expect(answers[2]).toBeInstanceOf(FleetError);
    expect((answers[2] as FleetError).code).toBe('NOT_FOUND');
    expect(answers[3]).toEqual({ accepted: false, state: 'downloading' });

    expect((await store.updates.get(ids.get('d1')!))?.state).toBe('downloading');
    expect((await store.updates.get(ids.get('d3')!))?.state).toBe('notified');
    // The succeeded install is the device's firmware at once, with its event.
    expect((await store.getDevice('d2', at(NOW + 1000)))?.firmwareVersion).toBe('2.0.0');
    const events = await store.listEvents({ limit: 100, after: 0 });
    expect(events.filter((e) => e.type === 'update.downloading').map((e) => e.deviceId)).toEqual(['d1']);
    expect(events.filter((e) => e.type === 'update.succeeded').map((e) => e.deviceId)).toEqual(['d2']);
    expect(events.filter((e) => e.type === 'device.firmware_changed').map((e) => e.deviceId)).toEqual(['d2']);
    expect(events.filter((e) => e.type === 'update.failed')).toEqual([]);
  });

  it('refuses a transition the rules forbid and keeps the batch’s other reports', async () => {
    const store = await backend.open();
    const ids = await granted(store);
    await store.updates.report('d1', ids.get('d1')!, { seq: 1, state: 'installing' }, at(NOW + 1));
    const answers = await store.updates.reportBatch(
      [
        { deviceId: 'd1', updateId: ids.get('d1')!, report: { seq: 2, state: 'downloading' } },
        { deviceId: 'd2', updateId: ids.get('d2')!, report: { seq: 1, state: 'downloading' } },
      ],
      at(NOW + 2),
    );
    expect((answers[0] as FleetError).code).toBe('TRANSITION_NOT_ALLOWED');
    expect(answers[1]).toEqual({ accepted: true, state: 'downloading' });
    expect((await store.updates.get(ids.get('d1')!))?.state).toBe('installing');
    await expect(
      store.updates.report('d1', ids.get('d1')!, { seq: 3, state: 'downloading' }, at(NOW + 3)),
    ).rejects.toMatchObject({ code: 'TRANSITION_NOT_ALLOWED' });
  });
});
