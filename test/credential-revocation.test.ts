/**
 * A device credential replaced or revoked, or a device decommissioned, is refused from the very next heartbeat:
 * whether the change was made through this app or by another replica on the same database. The heartbeat
 * compares the presented secret's hash with the one stored, read in the batch write itself (nothing about the
 * decision is cached), so no window exists in which the old credential still works.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';

forEachBackend((backend) => {
  let t: TestApp;
  /** Another replica's handle on the same database. */
  let other: SqlStore;

  beforeEach(async () => {
    const [store, second] = await backend.openPair();
    other = second;
    t = await testApp(Date.parse('2026-11-22T12:00:00Z'), { store });
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/import',
      headers: t.admin,
      payload: { devices: [{ id: 'dev-1' }, { id: 'dev-2' }] },
    });
    expect(r.statusCode).toBe(200);
  });
  afterEach(() => t.close());

  const ctx = () => ({ now: t.clock.now(), thresholds: DEFAULT_THRESHOLDS });

  async function issued(id: string): Promise<string> {
    const r = await t.app.inject({
      method: 'POST',
      url: `/api/v1/devices/${id}/credential`,
      headers: t.admin,
    });
    expect(r.statusCode).toBe(201);
    return r.json().credential;
  }

  async function heartbeat(id: string, credential: string): Promise<number> {
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/device/v1/heartbeat',
      headers: { authorization: `Bearer ${credential}` },
      payload: { device_id: id },
    });
    return r.statusCode;
  }

  it('a credential replaced through the API is refused at once, the new one accepted', async () => {
    const old = await issued('dev-1');
    expect(await heartbeat('dev-1', old)).toBe(200);
    const replacement = await issued('dev-1');
    expect(await heartbeat('dev-1', old)).toBe(401);
    expect(await heartbeat('dev-1', replacement)).toBe(200);
  });

  it('a credential replaced by another replica is refused at once', async () => {
    const old = await issued('dev-1');
    expect(await heartbeat('dev-1', old)).toBe(200);
    const replacement = deviceCredential('dev-1');
    await other.setCredential('dev-1', hashSecret(splitDeviceCredential(replacement)!.secret), ctx(), 'test');
    expect(await heartbeat('dev-1', old)).toBe(401);
    expect(await heartbeat('dev-1', replacement)).toBe(200);
  });

  it('a device decommissioned through the API or by another replica is refused at once', async () => {
    const first = await issued('dev-1');
    const second = await issued('dev-2');
    expect(await heartbeat('dev-1', first)).toBe(200);
    expect(await heartbeat('dev-2', second)).toBe(200);
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/dev-1/decommission',
      headers: t.admin,
    });
    expect(r.statusCode).toBe(200);
    expect(await heartbeat('dev-1', first)).toBe(401);
    await other.decommissionDevice('dev-2', ctx(), 'test');
    expect(await heartbeat('dev-2', second)).toBe(401);
  });

  it('heartbeats in one batch with the old and the new credential: only the new one is accepted', async () => {
    const old = await issued('dev-1');
    const replacement = await issued('dev-1');
    // Sent together, so the group commit writes them in one batch.
    const codes = await Promise.all([heartbeat('dev-1', old), heartbeat('dev-1', replacement)]);
    expect(codes).toEqual([401, 200]);
  });
});
