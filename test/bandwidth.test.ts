/**
 * Bandwidth-aware downloads (docs/bandwidth.md): the offer carries a rollout's download_rate_limit (a device's
 * tag wins), holds a device on a metered link with the reason, and a real download through the agent's
 * downloader from the real server is paced to the limit on both ends. Pacing runs in virtual time (a wait moves
 * the clock at once): the assertions are on the buckets' clocks and bytes per tick, never on wall-clock time.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { download } from '../src/agent/downloader.js';
import { TokenBucket } from '../src/core/token-bucket.js';
import { type TestApp, testApp } from './support/app.js';
import { tempDir } from './support/processes.js';
import { forEachBackend } from './support/stores.js';
import { uploadVanOs, vanFleet, vanRollout } from './support/vans.js';

const IMAGE = randomBytes(300_000);
const RATE = 100_000; // 100 kB/s

/** Virtual time: a wait moves the clock at once; `at` is how long the pacing made the transfer take. */
function virtualTime() {
  const time = {
    at: 0,
    now: () => time.at,
    wait: async (ms: number) => {
      time.at += ms;
    },
  };
  return time;
}

/** The vans, and van-os 2.0.0 (IMAGE) uploaded for them. */
async function fleet(t: TestApp, devices: Array<{ id: string; tags?: Record<string, string> }>) {
  const vans = await vanFleet(t, devices);
  return { vans, sha256: await uploadVanOs(t, '2.0.0', IMAGE) };
}

const rollout = (t: TestApp, extra: Record<string, unknown>) => vanRollout(t, '2.0.0', extra);

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

forEachBackend((backend) => {
  it('holds a metered device with the reason, hands the others the limit (a device tag wins), and lets a metered one through once it may', async () => {
    t = await testApp(undefined, { store: await backend.open() });
    const app = t;
    const { vans, sha256 } = await fleet(app, [
      { id: 'tagged', tags: { metered: 'true' } },
      { id: 'reporting' },
      { id: 'fixed' },
      { id: 'slow', tags: { download_rate_limit: '50kB/s' } },
      { id: 'fast', tags: { download_rate_limit: 'unlimited' } },
    ]);
    const created = await rollout(app, { download_rate_limit: '100kB/s' });
    expect(created.spec).toMatchObject({ download_rate_limit: '100kB/s' });
    expect(created.spec.allow_metered).toBeUndefined();

    for (const [id, metrics] of [
      ['tagged', undefined],
      ['reporting', { metered: true }],
    ] as const) {
      const held = await vans.offer(id, '1.0.0', metrics);
      expect(held.state).toBe('pending');
      expect(held.retry_after).toBe(900);
      expect(held.hold_reason).toBe(
        'metered connection: the release is 300kB and the rollout allows no download on a metered link',
      );
    }
    const fixed = await vans.offer('fixed');
    expect(fixed).toMatchObject({ state: 'notified', retry_after: null, download_rate_limit: RATE });
    expect(fixed.hold_reason).toBeUndefined();
    expect((await vans.offer('slow')).download_rate_limit).toBe(50_000);
    expect((await vans.offer('fast')).download_rate_limit).toBeUndefined();
    // What the artifact route paces by: the same rule, read for the device and the blob.
    expect(await app.store.updates.downloadGrant('fixed', sha256)).toEqual({ rateLimit: RATE });
    expect(await app.store.updates.downloadGrant('slow', sha256)).toEqual({ rateLimit: 50_000 });
    expect(await app.store.updates.downloadGrant('fast', sha256)).toEqual({ rateLimit: null });
    expect(await app.store.updates.downloadGrant('fixed', '0'.repeat(64))).toBeUndefined();

    // The device's link is no longer metered: the next heartbeat grants it, with the limit.
    const unmetered = await vans.offer('reporting', '1.0.0', { metered: false });
    expect(unmetered).toMatchObject({ state: 'notified', download_rate_limit: RATE });
    // The operator says the tagged one is unmetered now.
    const edit = await app.app.inject({
      method: 'POST',
      url: '/api/v1/devices/tags',
      headers: app.admin,
      payload: { ids: ['tagged'], set: { metered: 'false' } },
    });
    expect(edit.statusCode, edit.body).toBe(200);
    expect((await vans.offer('tagged')).state).toBe('notified');
  });
});

describe('bandwidth', () => {
  it('a rollout allowing metered links up to a size lets a smaller release through', async () => {
    t = await testApp();
    const { vans } = await fleet(t, [{ id: 'cell', tags: { metered: 'yes' } }]);
    const created = await rollout(t, { allow_metered: '500kB' });
    expect(created.spec.allow_metered).toBe('500kB');
    expect((await vans.offer('cell')).state).toBe('notified');
  });

  it('refuses a bad rate, a bad allowance and a bad bandwidth tag with a 400 naming the field, writing nothing', async () => {
    t = await testApp();
    await fleet(t, [{ id: 'v1' }]);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ download_rate_limit: '100kbps' }, 'download_rate_limit: "100kbps" is not a rate such as 100kB/s'],
      [{ download_rate_limit: '0kB/s' }, 'download_rate_limit: "0kB/s" is outside 1kB/s to 10GB/s'],
      [{ allow_metered: 'lots' }, 'allow_metered: "lots" is not a size'],
      [{ allow_metered: 5 }, 'allow_metered: must be true, false or a size such as 20MB'],
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
    for (const set of [{ download_rate_limit: 'fast' }, { metered: 'maybe' }]) {
      const r = await t.app.inject({
        method: 'POST',
        url: '/api/v1/devices/tags',
        headers: t.admin,
        payload: { ids: ['v1'], set },
      });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.message).toMatch(/^tags\.(download_rate_limit|metered): "(fast|maybe)"/);
    }
  });

  it('a 300 kB download at 100 kB/s through the agent downloader takes at least the bucket minimum on both ends', async () => {
    const server = virtualTime();
    t = await testApp(undefined, { pacing: server });
    const { vans, sha256 } = await fleet(t, [{ id: 'v1' }, { id: 'v2' }]);
    await rollout(t, { download_rate_limit: '100kB/s' });
    const limited = await vans.offer('v1');
    expect(limited.download_rate_limit).toBe(RATE);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;

    const agent = virtualTime();
    const ticks: Array<{ at: number; done: number }> = [];
    const dest = join(tempDir(), 'artifact');
    const got = await download({
      url: `${base}${limited.download_url}`,
      dest,
      headers: { authorization: `Bearer ${vans.credentials.get('v1')}` },
      rateLimit: limited.download_rate_limit,
      pacing: agent,
      onProgress: (done) => {
        ticks.push({ at: agent.at, done });
      },
    });
    expect(got).toMatchObject({ size: IMAGE.length, sha256 });
    expect((await readFile(dest)).equals(IMAGE)).toBe(true);

    // The agent's side: never ahead of the rate (plus the first burst and the chunk in hand), and no faster
    // overall than the bucket allows.
    const burst = RATE / 4;
    const chunks = ticks.slice(1).map((tick, i) => tick.done - ticks[i]!.done);
    const largest = Math.max(...chunks);
    for (const tick of ticks)
      expect(tick.done).toBeLessThanOrEqual((RATE * tick.at) / 1000 + burst + largest);
    // The downloader takes a burst at most at a time from its bucket, whatever the size of the chunks read.
    expect(agent.at).toBeGreaterThanOrEqual(TokenBucket.minimumMs(IMAGE.length, RATE, burst, burst));
    // The server's side paced the same response: a file stream's chunk is at most 64 KiB.
    expect(server.at).toBeGreaterThanOrEqual(TokenBucket.minimumMs(IMAGE.length, RATE, burst, 64 * 1024));

    // Without a limit (the device's tag lifts it) neither side waits.
    await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/tags',
      headers: t.admin,
      payload: { ids: ['v2'], set: { download_rate_limit: 'unlimited' } },
    });
    const free = await vans.offer('v2');
    expect(free.download_rate_limit).toBeUndefined();
    const serverBefore = server.at;
    const unpaced = virtualTime();
    await download({
      url: `${base}${free.download_url}`,
      dest: join(tempDir(), 'artifact'),
      headers: { authorization: `Bearer ${vans.credentials.get('v2')}` },
      rateLimit: free.download_rate_limit,
      pacing: unpaced,
    });
    expect(unpaced.at).toBe(0);
    expect(server.at).toBe(serverBefore);
  });
});
