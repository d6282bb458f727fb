/**
 * A staged configuration version rolled out with a strategy, on the real server and every store backend, devices
 * reporting through the device API and the engine ticked on a manual clock: a canary first, the next phase only
 * once the canary reported and the soak passed, the last phase promoted; a failing canary halts the rollout with
 * the other devices untouched, and cancelling sends the canary back; bad input is a 4xx before anything is written.
 */
import { beforeEach, expect, it } from 'vitest';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';

const IDS = Array.from({ length: 6 }, (_, i) => `pos-${i + 1}`);
const CREDENTIALS = Object.fromEntries(IDS.map((id) => [id, deviceCredential(id)]));
const SOAK_MS = 10 * 60_000;

forEachBackend((backend) => {
  let t: TestApp;
  let viewer = '';
  beforeEach(async () => {
    t = await testApp(undefined, { store: await backend.open() });
    const ctx = {
      now: t.clock.now(),
      thresholds: { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 },
    };
    await t.store.importDevices(
      IDS.map((id) => ({ id })),
      ctx,
      'test',
    );
    for (const [id, credential] of Object.entries(CREDENTIALS)) {
      await t.store.setCredential(id, hashSecret(splitDeviceCredential(credential)!.secret), ctx, 'test');
    }
    viewer = (await call(t.admin, 'POST', '/api/v1/tokens', { name: 'support', role: 'viewer' })).json()
      .token;
    await call(t.admin, 'PUT', '/api/v1/config/base', { document: { log: 'info' } });
    await call(t.admin, 'PUT', '/api/v1/config/base', { document: { log: 'debug' }, staged: true });
    return () => t.close();
  });

  const call = (
    headers: Record<string, string>,
    method: 'GET' | 'PUT' | 'POST',
    url: string,
    payload?: unknown,
  ) =>
    t.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  const device = (id: string) => ({ authorization: `Bearer ${CREDENTIALS[id]}` });
  const offer = async (id: string) =>
    (await call(device(id), 'POST', '/api/device/v1/heartbeat', { device_id: id })).json().config as
      | { version: string; hash: string }
      | undefined;
  const versions = async () => {
    const out: Array<string | null> = [];
    for (const id of IDS) out.push((await offer(id))?.version ?? null);
    return out;
  };
  /** Every device offered version 2 reports it, applied or (those in `failing`) failed. */
  const reportAll = async (failing: string[] = []) => {
    for (const id of IDS) {
      const o = await offer(id);
      if (o?.version !== 'base@2') continue;
      const result = failing.includes(id) ? 'failed' : 'applied';
      const r = await call(device(id), 'POST', '/api/device/v1/config/status', {
        version: o.version,
        hash: o.hash,
        result,
      });
      expect(r.statusCode).toBe(200);
    }
  };
  const show = async () => (await call(t.admin, 'GET', '/api/v1/config/base/rollout')).json();
  const start = (payload: object, headers = t.admin) =>
    call(headers, 'POST', '/api/v1/config/base/rollout', payload);
  const tick = () => t.engine.tick();
  const rolloutEvents = async () =>
    (await t.store.listEvents({ after: 0, limit: 500 }))
      .map((e) => e.type)
      .filter((type) => type.startsWith('config.rollout.'));

  it('releases a canary first, the next phase after its report and soak, and promotes at the end', async () => {
    const started = await start({ version: 2, phases: '1,50%,100%', soak: '10m', promote: true });
    expect(started.statusCode).toBe(200);
    expect(started.json()).toMatchObject({ state: 'running', phase: 1, promote: true, soak: SOAK_MS });
    // Nothing before the driver's step.
    expect(await versions()).toEqual(Array(6).fill('base@1'));

    await tick();
    expect(await versions()).toEqual(['base@2', ...Array(5).fill('base@1')]);
    expect((await show()).phases[0]).toMatchObject({ share: '1', counts: { released: 1, pending: 1 } });

    // The canary reported, the soak has not passed: the phase holds.
    await reportAll();
    await tick();
    expect(await versions()).toEqual(['base@2', ...Array(5).fill('base@1')]);
    t.clock.advance(SOAK_MS);
    await tick();
    // 50% of 6 is 3 devices by the end of phase 2.
    expect(await versions()).toEqual([...Array(3).fill('base@2'), ...Array(3).fill('base@1')]);
    expect(await show()).toMatchObject({
      phase: 2,
      phases: [
        { counts: { released: 1, applied: 1 } },
        { share: '50%', counts: { released: 2, pending: 2 } },
        { share: '100%', counts: null, started_at: null },
      ],
    });

    // Reported but not soaked, then soaked but not reported: neither moves on.
    t.clock.advance(SOAK_MS);
    await tick();
    expect((await show()).phase).toBe(2);
    await reportAll();
    await tick();
    expect(await versions()).toEqual(Array(6).fill('base@2'));
    await reportAll();
    t.clock.advance(SOAK_MS);
    await tick();
    const completed = await show();
    expect(completed).toMatchObject({ state: 'completed', reason: expect.stringContaining('promoted') });
    // Kept as they ended, though the releases went with the promotion.
    expect(completed.phases.map((p: { counts: object }) => p.counts)).toEqual([
      { released: 1, applied: 1, failed: 0, pending: 0 },
      { released: 2, applied: 2, failed: 0, pending: 0 },
      { released: 3, applied: 3, failed: 0, pending: 0 },
    ]);
    expect((await call(t.admin, 'GET', '/api/v1/config/base')).json()).toMatchObject({ version: 2 });
    expect((await call(t.admin, 'GET', '/api/v1/config/base/staged')).statusCode).toBe(404);
    expect(await rolloutEvents()).toEqual([
      'config.rollout.started',
      'config.rollout.phase',
      'config.rollout.phase',
      'config.rollout.completed',
    ]);
    const listed = (await call(bearer(viewer), 'GET', '/api/v1/config-rollouts')).json();
    expect(listed.rollouts).toMatchObject([{ name: 'base', state: 'completed' }]);
  });

  it('halts on a failing canary with the others untouched; resume judges again, cancel sends it back', async () => {
    await start({ version: 2, phases: '1,100%', soak: '0s', max_failure_rate: 10 });
    await tick();
    await reportAll(['pos-1']);
    await tick();
    const halted = await show();
    expect(halted).toMatchObject({
      state: 'halted',
      reason: 'phase 1 of 2 (1): 1 of 1 devices failed (0 applied, 0 not reported yet), over the 10% limit',
    });
    t.clock.advance(SOAK_MS);
    await tick();
    expect(await versions()).toEqual(['base@2', ...Array(5).fill('base@1')]);

    const resumed = await call(t.admin, 'POST', '/api/v1/config/base/rollout/resume');
    expect(resumed.json()).toMatchObject({ state: 'running', reason: null });
    await tick();
    expect((await show()).state).toBe('halted');

    const cancelled = await call(t.admin, 'POST', '/api/v1/config/base/rollout/cancel');
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({
      state: 'cancelled',
      reason: 'cancelled by api:admin',
      phases: [{ counts: { released: 1, failed: 1 } }, { counts: null }],
    });
    expect(await versions()).toEqual(Array(6).fill('base@1'));
    expect((await call(t.admin, 'GET', '/api/v1/config/base/staged')).statusCode).toBe(404);
    expect(await rolloutEvents()).toEqual([
      'config.rollout.started',
      'config.rollout.halted',
      'config.rollout.resumed',
      'config.rollout.halted',
      'config.rollout.cancelled',
    ]);
    const audited = (await t.store.audit.list({ limit: 50 })).map((e) => e.action);
    expect(audited).toEqual(
      expect.arrayContaining([
        'POST /api/v1/config/:name/rollout',
        'POST /api/v1/config/:name/rollout/resume',
        'POST /api/v1/config/:name/rollout/cancel',
      ]),
    );
  });

  it('pauses: no phase starts until it is resumed', async () => {
    await start({ version: 2, phases: '1,100%', soak: '0s' });
    await tick();
    expect((await call(t.admin, 'POST', '/api/v1/config/base/rollout/pause')).json().state).toBe('paused');
    expect((await call(t.admin, 'POST', '/api/v1/config/base/rollout/pause')).statusCode).toBe(409);
    await reportAll();
    await tick();
    expect(await versions()).toEqual(['base@2', ...Array(5).fill('base@1')]);
    await call(t.admin, 'POST', '/api/v1/config/base/rollout/resume');
    await tick();
    expect(await versions()).toEqual(Array(6).fill('base@2'));
  });

  it('refuses bad input with a 4xx before writing anything', async () => {
    const cases: Array<[object, number]> = [
      [{ version: 3 }, 409],
      [{}, 400],
      [{ version: 2, phases: '10%,50%' }, 400],
      [{ version: 2, phases: '50%,10%,100%' }, 400],
      [{ version: 2, soak: 'soon' }, 400],
      [{ version: 2, max_failure_rate: 101 }, 400],
      [{ version: 2, extra: true }, 400],
    ];
    for (const [payload, status] of cases) {
      const r = await start(payload);
      expect(r.statusCode, JSON.stringify(payload)).toBe(status);
      expect(Object.keys(r.json().error)).toEqual(expect.arrayContaining(['code', 'message']));
    }
    expect((await start({ version: 2 }, bearer(viewer))).statusCode).toBe(403);
    expect((await call(t.admin, 'POST', '/api/v1/config/nope/rollout', { version: 1 })).statusCode).toBe(404);
    expect((await call(t.admin, 'GET', '/api/v1/config/base/rollout')).statusCode).toBe(404);
    expect((await call(t.admin, 'POST', '/api/v1/config/base/rollout/pause')).statusCode).toBe(404);
    expect(await rolloutEvents()).toEqual([]);

    // A scoped operator sees nothing of a document set outside its scope.
    const scoped = (
      await call(t.admin, 'POST', '/api/v1/tokens', {
        name: 'east',
        role: 'operator',
        scope: 'tag.region=east',
      })
    ).json().token as string;
    expect((await start({ version: 2 }, bearer(scoped))).statusCode).toBe(404);

    expect((await start({ version: 2 })).statusCode).toBe(200);
    expect((await call(bearer(scoped), 'GET', '/api/v1/config/base/rollout')).statusCode).toBe(404);
    expect((await call(bearer(scoped), 'POST', '/api/v1/config/base/rollout/cancel')).statusCode).toBe(404);
    const second = await start({ version: 2 });
    expect(second.statusCode).toBe(409);
    expect(second.json().error.message).toContain('already has an active rollout');
  });
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
