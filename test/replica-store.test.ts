/**
 * What several replicas on one database do at once, on each backend (two store handles on one database):
 * claim rollout leases, write decisions after losing a lease, sweep statuses, take fleet snapshots.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { createRollout, runCommand } from '../src/engine/rollout-service.js';
import { hashSecret } from '../src/registry/credentials.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { TimeContext } from '../src/store/store.js';
import { forEachBackend, testRelease } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const TTL = 30_000;
const at = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });

async function rollouts(store: SqlStore, count: number): Promise<string[]> {
  await store.releases.create(testRelease('rel_1', '2.0.0', NOW), 'test');
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const spec = parseRolloutSpec({ name: `r${i}`, release: 'fw@2.0.0', filter: '', strategy: 'immediate' });
    ids.push((await createRollout(store, spec, at(NOW + i), 'test')).rollout.id);
  }
  return ids;
}

forEachBackend((backend) => {
  describe('rollout leases', () => {
    it('concurrent claimers never both hold a rollout, also when the leases run out together', async () => {
      const [a, b] = await backend.openPair();
      const ids = await rollouts(a, 8);
      for (let round = 0; round < 10; round++) {
        // Each round starts after every lease of the previous one ran out: all are up for grabs at once.
        const now = NOW + round * 2 * TTL;
        const claims = await Promise.all([
          a.rollouts.claimLeases('replica-a', now, TTL),
          b.rollouts.claimLeases('replica-b', now, TTL),
          a.rollouts.claimLeases('replica-c', now, TTL),
          b.rollouts.claimLeases('replica-d', now, TTL),
        ]);
        const held = claims.flat();
        expect(held.sort()).toEqual([...ids].sort());
        // Still within the lease: nobody else gets any, the holders renew theirs.
        expect(await b.rollouts.claimLeases('replica-e', now + TTL - 1, TTL)).toEqual([]);
      }
    });

    it('renews the holder’s leases and hands them over only once they ran out', async () => {
      const store = await backend.open();
      const [first, second] = await rollouts(store, 2);
      expect(await store.rollouts.claimLeases('a', NOW, TTL)).toEqual([first, second]);
      expect(await store.rollouts.claimLeases('b', NOW + TTL - 1, TTL)).toEqual([]);
      expect(await store.rollouts.claimLeases('a', NOW + TTL - 1, TTL)).toEqual([first, second]);
      expect(await store.rollouts.claimLeases('b', NOW + 2 * TTL - 2, TTL)).toEqual([]);
      expect(await store.rollouts.claimLeases('b', NOW + 2 * TTL, TTL)).toEqual([first, second]);
      await store.rollouts.releaseLeases('b');
      expect(await store.rollouts.claimLeases('a', NOW + 2 * TTL + 1, TTL)).toEqual([first, second]);
    });

    it('a replica that lost the lease writes nothing; an operator command still applies', async () => {
      const store = await backend.open();
      const [id] = await rollouts(store, 1);
      await store.rollouts.claimLeases('a', NOW, TTL);
      // a stalls past its lease; b takes the rollout over.
      await store.rollouts.claimLeases('b', NOW + TTL + 1, TTL);
      const late = { ...at(NOW + TTL + 2), leaseHolder: 'a' };
      const refused = await store.rollouts
        .update(id!, ['running'], { reason: 'stale decision' }, [], late)
        .catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: 'LEASE_LOST' });
      expect(await store.rollouts.timeOut(id!, NOW, late).catch((e: unknown) => e)).toMatchObject({
        code: 'LEASE_LOST',
      });
      expect((await store.rollouts.get(id!))!.reason).toBeNull();
      const ok = await store.rollouts.update(id!, ['running'], { reason: 'b decides' }, [], {
        ...at(NOW + TTL + 3),
        leaseHolder: 'b',
      });
      expect(ok.reason).toBe('b decides');
      expect((await runCommand(store, id!, 'pause', at(NOW + TTL + 4), 'operator')).state).toBe('paused');
    });
  });

  describe('sweeps and heartbeats on several replicas', () => {
    const OFFLINE = DEFAULT_THRESHOLDS.offlineAfterMs;

    it('two replicas sweeping at once record each silent device going offline once', async () => {
      const [a, b] = await backend.openPair();
      const ids = Array.from({ length: 300 }, (_, i) => `d-${String(i).padStart(3, '0')}`);
      await a.importDevices(
        ids.map((id) => ({ id })),
        at(NOW),
        'test',
      );
      for (const id of ids) await a.setCredential(id, hashSecret(`s-${id}`), at(NOW), 'test');
      await a.recordHeartbeats(
        ids.map((id) => ({ heartbeat: { deviceId: id }, credentialHash: hashSecret(`s-${id}`) })),
        at(NOW),
      );
      const later = at(NOW + OFFLINE + 1);
      // SQLite has one writer: there the sweeps run one after the other.
      const moved =
        backend.name === 'postgres'
          ? await Promise.all([a.sweepStatuses(later), b.sweepStatuses(later), a.sweepStatuses(later)])
          : [await a.sweepStatuses(later), await b.sweepStatuses(later)];
      expect(
        moved
          .flat()
          .map((t) => t.deviceId)
          .sort(),
      ).toEqual(ids);
      const events = await a.listEvents({ typePrefix: 'device.status', limit: 10_000 });
      const offline = events.filter((e) => e.data.to === 'offline').map((e) => e.deviceId);
      expect(offline.sort()).toEqual(ids);
    });

    it('the same heartbeat on two replicas at once records the device coming online once', async () => {
      const [a, b] = await backend.openPair();
      await a.importDevices([{ id: 'd-1', lastSeen: NOW - 2 * OFFLINE }], at(NOW), 'test');
      await a.setCredential('d-1', hashSecret('s'), at(NOW), 'test');
      const hb = [{ heartbeat: { deviceId: 'd-1' }, credentialHash: hashSecret('s') }];
      for (let round = 1; round <= 5; round++) {
        const when = at(NOW + round * 3 * OFFLINE);
        const writes = [() => a.recordHeartbeats(hb, when), () => b.recordHeartbeats(hb, when)];
        if (backend.name === 'postgres') await Promise.all(writes.map((w) => w()));
        else for (const w of writes) await w();
      }
      const events = await a.listEvents({ deviceId: 'd-1', typePrefix: 'device.status', limit: 100 });
      // Each round: offline → online once and, from the second on (the first found it offline since its
      // import), the silence before it once.
      expect(events.filter((e) => e.data.to === 'online')).toHaveLength(5);
      expect(events.filter((e) => e.data.to === 'offline')).toHaveLength(4);
    });

    it('replicas taking a fleet snapshot at once keep one series', async () => {
      const [a, b] = await backend.openPair();
      await a.importDevices([{ id: 'd-1' }], at(NOW), 'test');
      const gap = 4 * 60_000;
      const first = [
        () => a.recordFleetSnapshot(at(NOW), gap),
        () => b.recordFleetSnapshot(at(NOW + 5), gap),
      ];
      const recorded =
        backend.name === 'postgres'
          ? await Promise.all(first.map((f) => f()))
          : [await first[0]!(), await first[1]!()];
      expect(recorded.filter((r) => r !== undefined)).toHaveLength(1);
      expect(await b.recordFleetSnapshot(at(NOW + 3 * 60_000), gap)).toBeUndefined();
      expect(await b.recordFleetSnapshot(at(NOW + 5 * 60_000), gap)).toBeDefined();
      expect(await a.fleetHistory(NOW, NOW + 10 * 60_000)).toHaveLength(2);
    });
  });
});
