/**
 * Rollout leases between replicas, on each backend: two store handles on one database claim concurrently, and
 * a replica whose lease was taken over cannot write a decision any more.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { createRollout, runCommand } from '../src/engine/rollout-service.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { isLeaseLost, type TimeContext } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const TTL = 30_000;
const at = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });

async function rollouts(store: SqlStore, count: number): Promise<string[]> {
  await store.releases.create(
    {
      id: 'rel_1',
      name: 'fw',
      version: '2.0.0',
      type: 'firmware',
      hardware: ['hw-a'],
      size: 1,
      sha256: '0'.repeat(64),
      manifest: '{}',
      signature: 'x',
      keyId: 'k',
      allowDowngrade: false,
      createdAt: NOW,
    },
    'test',
  );
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
      expect(isLeaseLost(refused)).toBe(true);
      expect(isLeaseLost(await store.rollouts.timeOut(id!, NOW, late).catch((e: unknown) => e))).toBe(true);
      expect((await store.rollouts.get(id!))!.reason).toBeNull();
      const ok = await store.rollouts.update(id!, ['running'], { reason: 'b decides' }, [], {
        ...at(NOW + TTL + 3),
        leaseHolder: 'b',
      });
      expect(ok.reason).toBe('b decides');
      expect((await runCommand(store, id!, 'pause', at(NOW + TTL + 4), 'operator')).state).toBe('paused');
    });
  });
});
