/**
 * The approval queue in the store, on every backend: a tokenless request waits as pending under its key, only
 * the same key continues, an operator's decision moves it (per device, by id or filter), the accepted requester
 * completes with its credential, and a device that is not accepted is left out of heartbeats, plans and counts.
 */
import { beforeEach, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseFilter } from '../src/core/filter/index.js';
import { hashSecret } from '../src/registry/credentials.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { AdmissionRequest, TimeContext } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const ctx: TimeContext = { now: NOW, thresholds: DEFAULT_THRESHOLDS };
const KEY = hashSecret('key-of-the-first-requester');
const OTHER_KEY = hashSecret('key-of-someone-else');
const CREDENTIAL = hashSecret('the-credential');

const asking = (id: string, keyFingerprint = KEY): AdmissionRequest => ({
  device: { id, hardwareType: 'pos-x200', tags: { site: 'north' } },
  keyFingerprint,
  credentialHash: CREDENTIAL,
});

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
  });

  it('records a first tokenless request as pending with an event, and answers pending again for the same key', async () => {
    const first = await store.admission.request(asking('pos-1'), ctx);
    expect(first).toMatchObject({
      admission: 'pending',
      firstRequest: true,
      device: { admission: 'pending' },
    });
    const again = await store.admission.request(asking('pos-1'), { ...ctx, now: NOW + 60_000 });
    expect(again).toMatchObject({ admission: 'pending', firstRequest: false });
    const device = await store.getDevice('pos-1', ctx);
    expect(device).toMatchObject({ admission: 'pending', hasCredential: false, tags: { site: 'north' } });
    const events = await store.listEvents({ after: 0, limit: 10, typePrefix: 'device.admission' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'device.admission_requested', deviceId: 'pos-1' });
    expect(JSON.stringify(events[0]!.data)).not.toContain(CREDENTIAL);
    const [waiting] = await store.admission.waiting(10, ctx);
    expect(waiting).toMatchObject({ keyFingerprint: KEY, requestedAt: NOW, device: { id: 'pos-1' } });
  });

  it('refuses another key for a waiting id, before and after acceptance', async () => {
    await store.admission.request(asking('pos-1'), ctx);
    await expect(store.admission.request(asking('pos-1', OTHER_KEY), ctx)).rejects.toMatchObject({
      code: 'ADMISSION_KEY_MISMATCH',
    });
    await store.admission.decide('accept', { ids: ['pos-1'] }, ctx, 'alice');
    await expect(store.admission.request(asking('pos-1', OTHER_KEY), ctx)).rejects.toMatchObject({
      code: 'ADMISSION_KEY_MISMATCH',
    });
    expect(await store.credentialHash('pos-1')).toBeUndefined();
  });

  it('completes the accepted requester once: its credential is written, then the id is taken', async () => {
    await store.admission.request(asking('pos-1'), ctx);
    const [result] = await store.admission.decide('accept', { ids: ['pos-1'] }, ctx, 'alice');
    expect(result).toEqual({ id: 'pos-1', ok: true, admission: 'accepted' });
    const done = await store.admission.request(asking('pos-1'), ctx);
    expect(done).toMatchObject({
      admission: 'accepted',
      device: { admission: 'accepted', hasCredential: true },
    });
    expect(await store.credentialHash('pos-1')).toBe(CREDENTIAL);
    await expect(store.admission.request(asking('pos-1'), ctx)).rejects.toMatchObject({
      code: 'DEVICE_EXISTS',
    });
    const types = (await store.listEvents({ after: 0, limit: 10, deviceId: 'pos-1' })).map((e) => e.type);
    expect(types).toEqual(['device.admission_requested', 'device.accepted', 'device.enrolled']);
  });

  it('refuses a rejected requester, and lets an operator accept it after all', async () => {
    await store.admission.request(asking('pos-1'), ctx);
    await store.admission.decide('reject', { ids: ['pos-1'] }, ctx, 'alice');
    await expect(store.admission.request(asking('pos-1'), ctx)).rejects.toMatchObject({
      code: 'ENROLLMENT_REJECTED',
    });
    expect(await store.admission.waiting(10, ctx, 'rejected')).toHaveLength(1);
    const [again] = await store.admission.decide('accept', { ids: ['pos-1'] }, ctx, 'alice');
    expect(again).toMatchObject({ ok: true, admission: 'accepted' });
  });

  it('decides per device: an unknown, an accepted and a decommissioned id never fail the others', async () => {
    await store.importDevices([{ id: 'old' }, { id: 'gone' }], ctx, 'test');
    await store.decommissionDevice('gone', ctx, 'test');
    await store.admission.request(asking('pos-1'), ctx);
    const results = await store.admission.decide(
      'accept',
      { ids: ['nobody', 'old', 'gone', 'pos-1'] },
      ctx,
      'al',
    );
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
      'DEVICE_NOT_FOUND',
      'TRANSITION_NOT_ALLOWED',
      'DEVICE_DECOMMISSIONED',
      'ok',
    ]);
    expect((await store.getDevice('pos-1', ctx))?.admission).toBe('accepted');
  });

  it('accepts by filter only the devices the decision can move', async () => {
    await store.importDevices([{ id: 'pos-9', hardwareType: 'pos-x200' }], ctx, 'test');
    await store.admission.request(asking('pos-1'), ctx);
    await store.admission.request(
      { ...asking('kiosk-1'), device: { id: 'kiosk-1', hardwareType: 'kiosk' } },
      ctx,
    );
    const results = await store.admission.decide(
      'accept',
      { filter: parseFilter('hardware = pos-x200')! },
      ctx,
      'al',
    );
    expect(results).toEqual([{ id: 'pos-1', ok: true, admission: 'accepted' }]);
    expect((await store.getDevice('kiosk-1', ctx))?.admission).toBe('pending');
    const pending = await store.listDevices({
      ...ctx,
      filter: parseFilter('admission = pending'),
      limit: 10,
    });
    expect(pending.devices.map((d) => d.id)).toEqual(['kiosk-1']);
  });

  it('leaves a device that is not accepted out of heartbeats, plans and fleet counts', async () => {
    await store.importDevices([{ id: 'in-fleet' }], ctx, 'test');
    await store.admission.request(asking('pos-1'), ctx);
    await store.admission.request(asking('pos-2'), ctx);
    await store.admission.decide('reject', { ids: ['pos-2'] }, ctx, 'al');
    // An operator cannot hand a waiting device a credential; even with a certificate of its own (a factory CA's,
    // say), its heartbeat is refused.
    await expect(store.setCredential('pos-1', CREDENTIAL, ctx, 'al')).rejects.toMatchObject({
      code: 'TRANSITION_NOT_ALLOWED',
    });
    const certificate = {
      serial: '0a',
      deviceId: 'pos-1',
      fingerprint: hashSecret('der'),
      issuer: 'factory',
      notBefore: NOW - 1,
      notAfter: NOW + 86_400_000,
      issuedAt: NOW,
    };
    await store.certificates.record(certificate, 'test');
    const [hb] = await store.recordHeartbeats(
      [{ heartbeat: { deviceId: 'pos-1' }, certificateFingerprint: certificate.fingerprint }],
      ctx,
    );
    expect(hb).toEqual({ ok: false, reason: 'unauthenticated' });
    // Nor does its certificate authenticate any other call (renewal, reports, downloads, MQTT).
    expect(await store.certificates.deviceOf(certificate.fingerprint)).toBeNull();
    const plan = await store.rollouts.planDevices({ filter: undefined, tagKey: null }, ctx);
    expect(plan.map((d) => d.id)).toEqual(['in-fleet']);
    const stats = await store.fleetStats(undefined, undefined, ctx);
    expect(stats.total).toBe(1);
    expect((await store.recordFleetSnapshot(ctx)).total).toBe(1);
    // Accepted, it is in the fleet: its certificate authenticates it, plans and counts take it.
    await store.admission.decide('accept', { ids: ['pos-1'] }, ctx, 'al');
    expect(await store.certificates.deviceOf(certificate.fingerprint)).toBe('pos-1');
    const [accepted] = await store.recordHeartbeats(
      [{ heartbeat: { deviceId: 'pos-1' }, certificateFingerprint: certificate.fingerprint }],
      ctx,
    );
    expect(accepted).toMatchObject({ ok: true });
    const planned = await store.rollouts.planDevices({ filter: undefined, tagKey: null }, ctx);
    expect(planned.map((d) => d.id)).toEqual(['in-fleet', 'pos-1']);
    expect((await store.fleetStats(undefined, undefined, ctx)).total).toBe(2);
  });

  it('completes a pre-authorised id at its first request, and accepts one already waiting at import', async () => {
    await store.importDevices([{ id: 'pre-1' }], ctx, 'ops', new Set(['pre-1']));
    const done = await store.admission.request(asking('pre-1'), ctx);
    expect(done).toMatchObject({ admission: 'accepted', device: { hasCredential: true } });
    await store.admission.request(asking('pos-1'), ctx);
    await store.importDevices([{ id: 'pos-1', name: 'Till 1' }], ctx, 'ops', new Set(['pos-1']));
    expect(await store.getDevice('pos-1', ctx)).toMatchObject({ admission: 'accepted', name: 'Till 1' });
    expect(await store.admission.request(asking('pos-1'), ctx)).toMatchObject({ admission: 'accepted' });
    // An imported id that was not pre-authorised is not taken by whoever asks first.
    await store.importDevices([{ id: 'plain' }], ctx, 'ops');
    await expect(store.admission.request(asking('plain'), ctx)).rejects.toMatchObject({
      code: 'DEVICE_EXISTS',
    });
  });
});
