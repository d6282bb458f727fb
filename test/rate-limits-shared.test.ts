/**
 * Abuse limits shared by replicas: two servers on one database each count part of a flood; once they synced,
 * each refuses what the two together counted, and the rows of ended windows are pruned. Both backends.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { ClockedRateStore } from '../src/server/abuse/clocked-rate-store.js';
import { forEachBackend } from './support/stores.js';

const MINUTE = 60_000;

forEachBackend((backend) => {
  describe('rate-limit counts shared by replicas', () => {
    it('each replica counts what the other did once they synced; quiet keys are not written', async () => {
      const [one, two] = await backend.openPair();
      const clock = new ManualClock(Date.parse('2026-12-01T10:00:30Z'));
      const a = new ClockedRateStore(clock);
      const b = new ClockedRateStore(clock);
      {
        for (let i = 0; i < 12; i++) a.count('authfail:192.0.2.7', MINUTE, 20);
        for (let i = 0; i < 9; i++) b.count('authfail:192.0.2.7', MINUTE, 20);
        // A heartbeat's key, far below a tenth of its limit: never leaves the replica.
        a.count('device:cred-hash', MINUTE, 3_000);
        expect(a.peek('authfail:192.0.2.7').current).toBe(12);

        await a.sync(one.rateCounts);
        await b.sync(two.rateCounts);
        await a.sync(one.rateCounts);
        expect(a.peek('authfail:192.0.2.7').current).toBe(21);
        expect(b.peek('authfail:192.0.2.7').current).toBe(21);
        expect(a.peek('device:cred-hash').current).toBe(1);
        const rows = await one.db.selectFrom('rate_counts').selectAll().execute();
        expect(rows.map((r) => [r.key, Number(r.count)])).toEqual([['authfail:192.0.2.7', 21]]);

        // Windows are aligned on the clock: the next minute starts afresh on both, and old rows are pruned.
        clock.advance(MINUTE);
        expect(a.count('authfail:192.0.2.7', MINUTE, 20).current).toBe(1);
        expect(await one.rateCounts.prune(clock.now())).toBe(1);
      }
    });
  });
});
