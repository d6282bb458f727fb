/**
 * A rollout's byte budget for metered links (docs/bandwidth.md, `metered_budget`): a device on a metered link
 * downloads while the bytes it was granted over metered links in the rolling period, plus this release, fit in
 * the budget; past it the device is held with the reason until the period has moved on. Through the real HTTP API
 * on every store backend, with the injected clock.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';
import { uploadVanOs, vanFleet, vanRollout } from './support/vans.js';

const DAY = 86_400_000;
const RELEASE_BYTES = 300_000;

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const upload = (app: TestApp, version: string) => uploadVanOs(app, version, randomBytes(RELEASE_BYTES));

forEachBackend((backend) => {
  describe('metered budget', () => {
    it('grants a metered device while its period’s bytes fit the budget, holds it with the reason past it, and grants it once the period has moved on', async () => {
      t = await testApp(undefined, { store: await backend.open() });
      const app = t;
      const vans = await vanFleet(app, [{ id: 'cell', tags: { metered: 'true' } }, { id: 'roam' }]);
      const beat = vans.offer;

      // 500 kB per 30 days: one 300 kB release fits, a second does not.
      await upload(app, '2.0.0');
      const first = await vanRollout(app, '2.0.0', { metered_budget: '500kB/30d' });
      expect(first.spec.metered_budget).toBe('500kB/30d');
      const cell = await beat('cell', '1.0.0');
      expect(cell.state).toBe('notified');
      expect(cell.hold_reason).toBeUndefined();
      // On an unmetered link nothing is charged.
      const roam = await beat('roam', '1.0.0', { metered: false });
      expect(roam.state).toBe('notified');
      await vans.install('cell', cell.id);
      await vans.install('roam', roam.id);
      const chargedAt = app.clock.now();

      app.clock.advance(DAY);
      await upload(app, '3.0.0');
      await vanRollout(app, '3.0.0', { metered_budget: '500kB/30d' });
      const held = await beat('cell', '2.0.0');
      expect(held.state).toBe('pending');
      expect(held.retry_after).toBe(900);
      expect(held.hold_reason).toBe(
        'metered connection: the release is 300kB and 300kB of the 500kB/30d metered budget is used',
      );
      // The device that downloaded unmetered has its whole budget on a metered link now.
      expect((await beat('roam', '2.0.0', { metered: true })).state).toBe('notified');

      // A millisecond before the first grant leaves the 30-day window, it still counts.
      app.clock.advance(chargedAt + 30 * DAY - 1 - app.clock.now());
      expect((await beat('cell', '2.0.0')).hold_reason).toContain('300kB of the 500kB/30d');
      app.clock.advance(1);
      const granted = await beat('cell', '2.0.0');
      expect(granted.state).toBe('notified');
      expect(granted.hold_reason).toBeUndefined();
    });

    it('a device’s metered_budget tag is its contract: it lets the device download under a rollout without a budget and wins over a rollout’s', async () => {
      t = await testApp(undefined, { store: await backend.open() });
      const app = t;
      const vans = await vanFleet(app, [
        { id: 'sim', tags: { metered: 'true', metered_budget: '400kB/7d' } },
        { id: 'plain', tags: { metered: 'true' } },
      ]);
      const beat = vans.offer;
      await upload(app, '2.0.0');
      await vanRollout(app, '2.0.0', {});
      const granted = await beat('sim', '1.0.0');
      expect(granted.state).toBe('notified');
      expect((await beat('plain', '1.0.0')).hold_reason).toBe(
        'metered connection: the release is 300kB and the rollout allows no download on a metered link',
      );
      await vans.install('sim', granted.id);
      // The next release, under a rollout with a larger budget: the device's own budget still decides.
      await upload(app, '3.0.0');
      await vanRollout(app, '3.0.0', { metered_budget: '10MB/30d' });
      const held = await beat('sim', '2.0.0');
      expect(held.hold_reason).toBe(
        'metered connection: the release is 300kB and 300kB of the 400kB/7d metered budget is used',
      );
      app.clock.advance(7 * DAY);
      expect((await beat('sim', '2.0.0')).state).toBe('notified');

      const bad = await app.app.inject({
        method: 'POST',
        url: '/api/v1/devices/tags',
        headers: app.admin,
        payload: { ids: ['plain'], set: { metered_budget: '400kB' } },
      });
      expect(bad.statusCode, bad.body).toBe(400);
      expect(bad.json().error.message).toBe(
        'tags.metered_budget: "400kB" is not a budget such as 50MB/30d (a size, a slash, a period)',
      );
    });

    it('a size in allow_metered still caps each release under a budget', async () => {
      t = await testApp(undefined, { store: await backend.open() });
      const vans = await vanFleet(t, [{ id: 'cell', tags: { metered: 'true' } }]);
      await upload(t, '2.0.0');
      await vanRollout(t, '2.0.0', { metered_budget: '10MB/30d', allow_metered: '200kB' });
      expect(await vans.offer('cell')).toMatchObject({
        state: 'pending',
        hold_reason:
          'metered connection: the release is 300kB and the rollout allows up to 200kB on a metered link',
      });
    });
  });
});

describe('metered budget validation', () => {
  it('refuses a bad budget with a 400 naming the field, creating nothing', async () => {
    t = await testApp();
    await vanFleet(t, [{ id: 'v1' }]);
    await upload(t, '2.0.0');
    const cases: Array<[Record<string, unknown>, string]> = [
      [
        { metered_budget: 'lots' },
        'metered_budget: "lots" is not a budget such as 50MB/30d (a size, a slash, a period)',
      ],
      [{ metered_budget: '50MB' }, 'metered_budget: "50MB" is not a budget such as 50MB/30d'],
      [{ metered_budget: '50Mbit/30d' }, 'metered_budget: "50Mbit/30d" is not a budget'],
      [{ metered_budget: '50MB/month' }, 'metered_budget: "50MB/month" is not a budget'],
      [{ metered_budget: '0MB/30d' }, 'metered_budget: "0MB/30d": the size must lie between 1kB and 1000GB'],
      [{ metered_budget: '50MB/10m' }, 'metered_budget: "50MB/10m": the period must lie between 1h and 366d'],
      [{ metered_budget: '50MB/400d' }, 'the period must lie between 1h and 366d'],
      [
        { metered_budget: '50MB/30d', allow_metered: true },
        'metered_budget: cannot be combined with allow_metered: true',
      ],
      [{ metered_budget: '50MB/30d', allow_metered: false }, 'cannot be combined with allow_metered: false'],
      [{ metered_budget: 50 }, 'metered_budget'],
    ];
    for (const [extra, message] of cases) {
      const r = await t.app.inject({
        method: 'POST',
        url: '/api/v1/rollouts',
        headers: t.admin,
        payload: { name: 'vans', release: 'van-os@2.0.0', filter: '', strategy: 'immediate', ...extra },
      });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error).toMatchObject({ code: 'VALIDATION' });
      expect(r.json().error.message).toContain(message);
    }
    const list = await t.app.inject({ method: 'GET', url: '/api/v1/rollouts', headers: t.admin });
    expect(list.json().rollouts).toEqual([]);
  });
});
