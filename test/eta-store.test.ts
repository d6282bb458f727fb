/**
 * The store's part of the live ETA, on every backend: update times of earlier rollouts on the same hardware
 * (the `history` source), this rollout's own left out.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { createRollout } from '../src/engine/rollout-service.js';
import { hashSecret } from '../src/registry/credentials.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend, testRelease } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const MINUTE = 60_000;
const at = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });
const secretOf = (id: string) => `secret-of-${id}`;

describe('hardwareUpdateDurations', () => {
  forEachBackend((backend) => {
    let store: SqlStore;
    beforeEach(async () => {
      store = await backend.open();
    });

    it('reads finished updates on devices of those hardware types, in rollouts other than the one asking', async () => {
      await store.releases.create(testRelease('rel_a', '2.0.0', NOW, ['kiosk', 'pos']), 'test');
      const ids = ['k1', 'k2', 'p1'];
      await store.importDevices(
        ids.map((id) => ({
          id,
          firmwareVersion: '1.0.0',
          hardwareType: id.startsWith('k') ? 'kiosk' : 'pos',
        })),
        at(NOW),
        'test',
      );
      for (const id of ids) await store.setCredential(id, hashSecret(secretOf(id)), at(NOW), 'test');
      await store.recordHeartbeats(
        ids.map((id) => ({ heartbeat: { deviceId: id }, credentialHash: hashSecret(secretOf(id)) })),
        at(NOW),
      );
      const spec = parseRolloutSpec({
        name: 'first',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
      });
      const { rollout } = await createRollout(store, spec, at(NOW), 'test');
      const granted = await store.updates.offer(ids, at(NOW + MINUTE));
      const report = (id: string, minutes: number) =>
        store.updates.report(
          id,
          granted.get(id)![0]!.update.id,
          { seq: 1, state: 'succeeded' },
          at(NOW + (1 + minutes) * MINUTE),
        );
      await report('k1', 3);
      await report('k2', 5);
      await report('p1', 30);

      const kiosk = await store.rollouts.hardwareUpdateDurations(['kiosk'], null, 10);
      expect(kiosk.sort((a, b) => a - b)).toEqual([3 * MINUTE, 5 * MINUTE]);
      expect(await store.rollouts.hardwareUpdateDurations(['kiosk', 'pos'], null, 10)).toHaveLength(3);
      expect(await store.rollouts.hardwareUpdateDurations(['kiosk'], null, 1)).toHaveLength(1);
      expect(await store.rollouts.hardwareUpdateDurations(['kiosk'], rollout.id, 10)).toEqual([]);
      expect(await store.rollouts.hardwareUpdateDurations([], null, 10)).toEqual([]);
    });
  });
});
