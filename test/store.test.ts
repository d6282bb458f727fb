/**
 * The Store port, on every backend (test/support/stores.ts): the same inputs must give the same results on
 * SQLite and PostgreSQL. Time is injected through the TimeContext; nothing sleeps.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_THRESHOLDS,
  type Device,
  type DeviceRecord,
  type DeviceStatus,
  deviceStatus,
} from '../src/core/device.js';
import { type FilterNode, matchesFilter, parseFilter } from '../src/core/filter/index.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { versionKey } from '../src/core/semver.js';
import { createRollout, planFor } from '../src/engine/rollout-service.js';
import { hashSecret } from '../src/registry/credentials.js';
import type { SqlStore } from '../src/store/sql-store.js';
import {
  DEVICE_SORT_FIELDS,
  type DeviceSortField,
  type PresentedHeartbeat,
  type StoredEvent,
  type TimeContext,
} from '../src/store/store.js';
import { newUpdateId } from '../src/store/update-ids.js';
import { forEachBackend, testRelease } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const MINUTE = 60_000;
const DAY = 86_400_000;
const OFFLINE = DEFAULT_THRESHOLDS.offlineAfterMs;
const ABANDONED = DEFAULT_THRESHOLDS.abandonedAfterMs;

const at = (now: number): TimeContext => ({ now, thresholds: DEFAULT_THRESHOLDS });
const ctx = at(NOW);
const filter = (text: string): FilterNode => parseFilter(text)!;

/** Byte-wise (UTF-8) order: what `collate "C"` and SQLite's BINARY collation both give. */
const bytewise = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

const secretOf = (id: string) => `secret-of-${id}`;
function heartbeat(id: string, extra: Partial<PresentedHeartbeat['heartbeat']> = {}, secret = secretOf(id)) {
  return { heartbeat: { deviceId: id, ...extra }, credentialHash: hashSecret(secret) };
}

async function withCredentials(store: SqlStore, ids: string[]): Promise<void> {
  for (const id of ids) await store.setCredential(id, hashSecret(secretOf(id)), ctx, 'test');
}

async function allEvents(store: SqlStore, query: { typePrefix?: string; deviceId?: string } = {}) {
  const events: StoredEvent[] = [];
  for (let after = 0; ; ) {
    const page = await store.listEvents({ ...query, after, limit: 1000 });
    events.push(...page);
    if (page.length < 1000) return events;
    after = page[page.length - 1]!.id;
  }
}

async function allDevices(store: SqlStore, now = NOW): Promise<Device[]> {
  const devices: Device[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listDevices({ ...at(now), limit: 500, cursor });
    devices.push(...page.devices);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return devices;
}

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
  });

  it('opens the dialect it says', () => {
    expect(store.dialect).toBe(backend.dialect);
  });

  describe('importDevices', () => {
    it('counts created and updated devices, replaces tags and records registrations', async () => {
      const first = await store.importDevices(
        [
          { id: 'gw-1', name: 'Gateway 1', firmwareVersion: '1.0.0', tags: { region: 'west', ring: 'beta' } },
          { id: 'gw-2', hardwareType: 'pi4', tags: { region: 'east' } },
          { id: 'gw-3', lastSeen: NOW - MINUTE },
        ],
        ctx,
        'alice',
      );
      expect(first).toEqual({ created: 3, updated: 0 });

      const later = at(NOW + DAY);
      const second = await store.importDevices(
        [
          { id: 'gw-1', name: 'Renamed', tags: { region: 'north' } },
          { id: 'gw-2', customer: 'acme' },
          { id: 'gw-4' },
        ],
        later,
        'bob',
      );
      expect(second).toEqual({ created: 1, updated: 2 });

      const gw1 = await store.getDevice('gw-1', later);
      expect(gw1).toMatchObject({
        name: 'Renamed',
        firmwareVersion: '1.0.0',
        tags: { region: 'north' },
        createdAt: NOW,
        status: 'unknown',
        hasCredential: false,
      });
      // Tags not mentioned by a record are kept; mentioned ones replace the old set (in device_tags too).
      expect((await store.getDevice('gw-2', later))?.tags).toEqual({ region: 'east' });
      expect((await store.getDevice('gw-2', later))?.customer).toBe('acme');
      expect(await store.countDevices(filter('tag.ring = beta'), later)).toBe(0);
      expect(await store.countDevices(filter('tag.region = north'), later)).toBe(1);
      expect(await store.countDevices(filter('tag.region = east'), later)).toBe(1);
      expect((await store.getDevice('gw-4', later))?.createdAt).toBe(NOW + DAY);
      expect((await store.getDevice('gw-3', later))?.lastSeen).toBe(NOW - MINUTE);

      const events = await allEvents(store);
      expect(events.map((e) => [e.type, e.deviceId, e.actor])).toEqual([
        ['device.registered', 'gw-1', 'alice'],
        ['device.registered', 'gw-2', 'alice'],
        ['device.registered', 'gw-3', 'alice'],
        ['fleet.imported', null, 'alice'],
        ['device.registered', 'gw-4', 'bob'],
        ['fleet.imported', null, 'bob'],
      ]);
      expect(events[3]?.data).toEqual({ created: 3, updated: 0 });
      expect(events[5]).toMatchObject({ at: NOW + DAY, data: { created: 1, updated: 2 } });
    });

    it('imports more devices than one statement holds', async () => {
      const records = Array.from({ length: 1_234 }, (_, i) => ({ id: `d-${i}`, tags: { n: String(i % 3) } }));
      expect(await store.importDevices(records, ctx, 'test')).toEqual({ created: 1_234, updated: 0 });
      expect(await store.importDevices(records, ctx, 'test')).toEqual({ created: 0, updated: 1_234 });
      expect(await store.countDevices(undefined, ctx)).toBe(1_234);
      expect(await store.countDevices(filter('tag.n = 1'), ctx)).toBe(411);
    });

    it('writes what one record at a time would, past one native statement (10,000 rows)', async () => {
      const first = Array.from({ length: 12_345 }, (_, i) => ({
        id: `d-${String(i).padStart(5, '0')}`,
        firmwareVersion: i % 2 ? '1.0.0' : '2.0.0',
        lastSeen: i % 3 ? NOW - i : null,
        tags: { n: String(i % 3), all: 'yes' },
      }));
      expect(await store.importDevices(first, ctx, 'alice')).toEqual({ created: 12_345, updated: 0 });
      // Again: some known devices renamed (tags not mentioned: kept) or retagged, and new devices among them.
      const later = at(NOW + DAY);
      const second: DeviceRecord[] = [
        ...Array.from({ length: 11_000 }, (_, i) => ({
          id: `d-${String(i).padStart(5, '0')}`,
          name: `n${i}`,
        })),
        { id: 'd-00007', tags: { n: 'x' } },
        ...Array.from({ length: 1_500 }, (_, i) => ({ id: `e-${i}`, tags: { n: '1' } })),
      ];
      expect(await store.importDevices(second, later, 'bob')).toEqual({ created: 1_500, updated: 11_001 });

      expect(await store.countDevices(undefined, later)).toBe(13_845);
      expect(await store.countDevices(filter('tag.all = yes'), later)).toBe(12_344);
      expect(await store.countDevices(filter('tag.n = 1'), later)).toBe(4_115 - 1 + 1_500); // d-00007 was one
      expect(await store.countDevices(filter('tag.n = x'), later)).toBe(1);
      expect(await store.getDevice('d-00007', later)).toMatchObject({
        name: 'n7',
        tags: { n: 'x' },
        firmwareVersion: '1.0.0',
        lastSeen: NOW - 7,
        createdAt: NOW,
      });
      expect(await store.getDevice('d-12344', later)).toMatchObject({
        name: 'd-12344',
        tags: { n: '2', all: 'yes' },
      });
      expect(await store.getDevice('e-3', later)).toMatchObject({ createdAt: NOW + DAY, tags: { n: '1' } });
      const page = await store.listDevices({
        ...later,
        filter: filter('firmware = 2.0.0'),
        sort: 'firmware',
        limit: 1,
      });
      expect(page.devices.map((d) => d.id)).toEqual(['d-00000']);

      const events = await allEvents(store);
      expect(events.map((e) => e.type)).toEqual([
        ...Array(12_345).fill('device.registered'),
        'fleet.imported',
        ...Array(1_500).fill('device.registered'),
        'fleet.imported',
      ]);
      expect(events.filter((e) => e.type === 'device.registered').map((e) => e.deviceId)).toEqual([
        ...first.map((r) => r.id),
        ...second.slice(-1_500).map((r) => r.id),
      ]);
      expect(events.at(-1)).toMatchObject({
        at: NOW + DAY,
        actor: 'bob',
        data: { created: 1_500, updated: 11_001 },
      });
      expect(events[0]).toMatchObject({ at: NOW, actor: 'alice', reason: 'import', data: {} });
    });
  });

  describe('setCredentials', () => {
    it('sets many in one go; unknown and decommissioned devices are refused; the last of a device wins', async () => {
      const ids = Array.from({ length: 10_500 }, (_, i) => `c-${i}`);
      await store.importDevices(
        ids.map((id) => ({ id })),
        ctx,
        'test',
      );
      await store.decommissionDevice('c-3', ctx, 'test');
      const credentials = [
        ...ids.map((id) => ({ id, credentialHash: hashSecret(`first-${id}`) })),
        { id: 'ghost', credentialHash: hashSecret('ghost') },
        { id: 'c-5', credentialHash: hashSecret('second-c-5') },
      ];
      const later = at(NOW + MINUTE);
      expect(await store.setCredentials(credentials, later, 'alice')).toEqual({
        set: 10_500,
        refused: ['c-3', 'ghost'],
      });
      expect(await store.credentialHash('c-0')).toBe(hashSecret('first-c-0'));
      expect(await store.credentialHash('c-10499')).toBe(hashSecret('first-c-10499'));
      expect(await store.credentialHash('c-5')).toBe(hashSecret('second-c-5'));
      expect(await store.credentialHash('c-3')).toBeUndefined();
      expect(await store.getDevice('c-1', later)).toMatchObject({ hasCredential: true });
      const issued = await allEvents(store, { typePrefix: 'device.credential_issued' });
      expect(issued.map((e) => e.deviceId)).toEqual(
        credentials.map((c) => c.id).filter((id) => id !== 'c-3' && id !== 'ghost'),
      );
      expect(issued[0]).toMatchObject({ at: NOW + MINUTE, actor: 'alice', reason: null, data: {} });
    });
  });

  describe('getDevice', () => {
    it('derives the status at the 10 minute and 30 day boundaries', async () => {
      const cases: Array<[string, number | null, DeviceStatus]> = [
        ['now', NOW, 'online'],
        ['exactly-10m', NOW - OFFLINE, 'online'],
        ['10m-1ms', NOW - OFFLINE - 1, 'offline'],
        ['exactly-30d', NOW - ABANDONED, 'offline'],
        ['30d-1ms', NOW - ABANDONED - 1, 'abandoned'],
        ['never', null, 'unknown'],
      ];
      await store.importDevices(
        cases.map(([id, lastSeen]) => ({ id, lastSeen })),
        ctx,
        'test',
      );
      for (const [id, lastSeen, status] of cases) {
        const device = await store.getDevice(id, ctx);
        expect(device, id).toMatchObject({ id, status, lastSeen });
      }
      // The filter's status is the same rule, evaluated by the database.
      for (const status of ['online', 'offline', 'abandoned', 'unknown'] as const) {
        const expected = cases.filter(([, , s]) => s === status).map(([id]) => id);
        const page = await store.listDevices({ ...ctx, filter: filter(`status = ${status}`), limit: 100 });
        expect(page.devices.map((d) => d.id).sort(), status).toEqual(expected.sort());
      }
      expect(await store.getDevice('nobody', ctx)).toBeUndefined();
      await store.decommissionDevice('now', ctx, 'test');
      expect((await store.getDevice('now', ctx))?.status).toBe('decommissioned');
    });

    it('returns times as numbers', async () => {
      await store.importDevices([{ id: 'x', lastSeen: NOW }], ctx, 'test');
      const device = await store.getDevice('x', ctx);
      expect(typeof device?.lastSeen).toBe('number');
      expect(typeof device?.createdAt).toBe('number');
    });
  });

  describe('listDevices', () => {
    const NAMES = ['Truck 17', 'truck 17', 'Zürich', 'zebra', 'a😀c', 'a_b', 'A', '', '100%', 'bus'];
    const FIRMWARE = ['2.1.9', '2.2.0-rc.1', '2.2.0', '2.2', 'v2.10.0', '10.0.0', 'banana', null];
    const HARDWARE = ['pi4', 'Pi4', 'x86', 'ärm', null];
    /** 250 devices with many equal sort keys, created in five batches. */
    const fleet: DeviceRecord[] = Array.from({ length: 250 }, (_, i) => ({
      id: `dev-${String((i * 7919) % 1000).padStart(3, '0')}-${i}`,
      name: NAMES[i % NAMES.length]!,
      firmwareVersion: FIRMWARE[i % FIRMWARE.length] ?? null,
      hardwareType: HARDWARE[i % HARDWARE.length] ?? null,
      lastSeen: i % 6 === 0 ? null : NOW - (i % 9) * 3 * MINUTE,
      tags: { region: i % 2 ? 'west' : 'east' },
    }));
    const createdAt = (i: number) => NOW - 5 * MINUTE + (i % 5) * MINUTE;

    beforeEach(async () => {
      for (let batch = 0; batch < 5; batch++) {
        const records = fleet.filter((_, i) => i % 5 === batch);
        await store.importDevices(records, at(createdAt(batch)), 'test');
      }
    });

    function sortKey(field: DeviceSortField, r: DeviceRecord, i: number): string | number {
      switch (field) {
        case 'id':
          return r.id;
        case 'name':
          return r.name!;
        case 'last_seen':
          return r.lastSeen ?? -1;
        case 'firmware':
          return (r.firmwareVersion && versionKey(r.firmwareVersion)) ?? '';
        case 'hardware':
          return r.hardwareType ?? '';
        case 'created':
          return createdAt(i);
      }
    }

    function expectedOrder(field: DeviceSortField, descending: boolean, keep = (_: DeviceRecord) => true) {
      const sign = descending ? -1 : 1;
      const compare = (a: string | number, b: string | number) =>
        typeof a === 'number' && typeof b === 'number' ? a - b : bytewise(String(a), String(b));
      return fleet
        .map((r, i) => ({ r, key: sortKey(field, r, i) }))
        .filter(({ r }) => keep(r))
        .sort((a, b) => sign * (compare(a.key, b.key) || bytewise(a.r.id, b.r.id)))
        .map(({ r }) => r.id);
    }

    async function pageThrough(field: DeviceSortField, descending: boolean, limit: number, f?: FilterNode) {
      const ids: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listDevices({ ...ctx, sort: field, descending, cursor, limit, filter: f });
        expect(page.devices.length).toBeLessThanOrEqual(limit);
        ids.push(...page.devices.map((d) => d.id));
        cursor = page.nextCursor ?? undefined;
        if (cursor) expect(page.devices.length).toBe(limit);
        expect(++pages).toBeLessThan(1_000);
      } while (cursor);
      return ids;
    }

    for (const field of DEVICE_SORT_FIELDS) {
      for (const descending of [false, true]) {
        it(`pages by ${field} ${descending ? 'descending' : 'ascending'} without skipping or repeating`, async () => {
          const ids = await pageThrough(field, descending, 17);
          expect(new Set(ids).size).toBe(fleet.length);
          expect(ids).toEqual(expectedOrder(field, descending));
        });
      }
    }

    it('pages a filtered list', async () => {
      const f = filter('status = online and tag.region = west');
      const devices = await allDevices(store);
      const matching = new Set(devices.filter((d) => matchesFilter(f, d, ctx)).map((d) => d.id));
      expect(matching.size).toBeGreaterThan(10);
      const ids = await pageThrough('name', true, 7, f);
      expect(ids).toEqual(expectedOrder('name', true, (r) => matching.has(r.id)));
    });

    it('returns one page with no cursor when everything fits', async () => {
      const page = await store.listDevices({ ...ctx, limit: 250 });
      expect(page.devices).toHaveLength(250);
      expect(page.nextCursor).toBeNull();
    });

    it('refuses a cursor it did not issue', async () => {
      await expect(store.listDevices({ ...ctx, limit: 5, cursor: 'bogus' })).rejects.toMatchObject({
        code: 'BAD_CURSOR',
      });
    });

    it('counts the devices a filter matches, as matchesFilter does', async () => {
      const devices = await allDevices(store);
      expect(devices).toHaveLength(250);
      for (const text of [
        'tag.region = west',
        'firmware < 2.2.0',
        'firmware >= 2.2.0 and status != offline',
        'hardware = pi4 or hardware = "ärm"',
        'hardware != pi4',
        'name = "a_b"',
        'name = "truck*"',
        'last_seen = never',
        'status in (online, unknown)',
      ]) {
        const f = filter(text);
        const expected = devices.filter((d) => matchesFilter(f, d, ctx)).length;
        expect(await store.countDevices(f, ctx), text).toBe(expected);
      }
      expect(await store.countDevices(undefined, ctx)).toBe(250);
    });
  });

  describe('recordHeartbeats', () => {
    beforeEach(async () => {
      await store.importDevices(
        [
          { id: 'fresh', firmwareVersion: '1.0.0' },
          { id: 'silent', lastSeen: NOW - 45 * MINUTE },
          { id: 'missed' },
          { id: 'retired' },
          { id: 'no-cred' },
        ],
        at(NOW - 30 * MINUTE),
        'test',
      );
      await withCredentials(store, ['fresh', 'silent', 'missed', 'retired']);
      // Online when last heard from; the sweeper has not run since.
      await store.recordHeartbeats([heartbeat('missed')], at(NOW - 15 * MINUTE));
      await store.decommissionDevice('retired', at(NOW - 15 * MINUTE), 'test');
    });

    it('authenticates each heartbeat of a batch and records every status change', async () => {
      const before = (await allEvents(store)).length;
      const outcomes = await store.recordHeartbeats(
        [
          heartbeat('fresh', { firmwareVersion: '2.1.0', battery: 0.5, location: { lat: 1.5, lon: -2.25 } }),
          heartbeat('silent', { metrics: { cpu: 3 } }),
          heartbeat('missed'),
          heartbeat('ghost'),
          heartbeat('retired'),
          heartbeat('no-cred'),
          heartbeat('silent', {}, 'wrong secret'),
          heartbeat('fresh'),
        ],
        ctx,
      );
      expect(outcomes).toEqual([
        { ok: true, previousStatus: 'unknown', hasOpenUpdates: false },
        { ok: true, previousStatus: 'offline', hasOpenUpdates: false },
        { ok: true, previousStatus: 'offline', hasOpenUpdates: false },
        { ok: false, reason: 'unauthenticated' },
        { ok: false, reason: 'unauthenticated' },
        { ok: false, reason: 'unauthenticated' },
        { ok: false, reason: 'unauthenticated' },
        { ok: true, previousStatus: 'online', hasOpenUpdates: false },
      ]);
      const events = (await allEvents(store)).slice(before);
      expect(events.map((e) => [e.deviceId, e.type, e.data])).toEqual([
        ['fresh', 'device.status', { from: 'unknown', to: 'online' }],
        ['fresh', 'device.firmware_changed', { from: '1.0.0', to: '2.1.0' }],
        ['silent', 'device.status', { from: 'offline', to: 'online' }],
        // The sweeper never saw `missed` go silent: the heartbeat records both transitions.
        ['missed', 'device.status', { from: 'online', to: 'offline' }],
        ['missed', 'device.status', { from: 'offline', to: 'online' }],
      ]);
      expect(events.every((e) => e.at === NOW)).toBe(true);

      const fresh = await store.getDevice('fresh', ctx);
      expect(fresh).toMatchObject({ status: 'online', lastSeen: NOW, firmwareVersion: '2.1.0' });
      expect(fresh?.telemetry).toMatchObject({ battery: 0.5, geo: { lat: 1.5, lon: -2.25 } });
      expect((await store.getDevice('silent', ctx))?.telemetry.metrics).toEqual({ cpu: 3 });
      expect((await store.getDevice('retired', ctx))?.lastSeen).toBeNull();
      expect((await store.getDevice('no-cred', ctx))?.lastSeen).toBeNull();

      // The firmware key moved with the version, so filters see the new one.
      expect(await store.countDevices(filter('firmware < 2.0.0'), ctx)).toBe(0);
      expect(await store.countDevices(filter('firmware >= 2.1.0'), ctx)).toBe(1);

      // A second heartbeat changes nothing but last_seen.
      const count = (await allEvents(store)).length;
      await store.recordHeartbeats([heartbeat('fresh', { firmwareVersion: '2.1.0' })], at(NOW + MINUTE));
      expect(await allEvents(store)).toHaveLength(count);
      expect((await store.getDevice('fresh', ctx))?.lastSeen).toBe(NOW + MINUTE);
    });

    it('writes nothing for an empty batch', async () => {
      expect(await store.recordHeartbeats([], ctx)).toEqual([]);
    });
  });

  describe('sweepStatuses', () => {
    it('moves a silent device online → offline → abandoned with one event each', async () => {
      await store.importDevices([{ id: 'a' }, { id: 'b' }, { id: 'never' }], ctx, 'test');
      await withCredentials(store, ['a', 'b']);
      await store.recordHeartbeats([heartbeat('b'), heartbeat('a')], ctx);
      const statusEvents = async () =>
        (await allEvents(store, { typePrefix: 'device.status' })).map((e) => [e.deviceId, e.data, e.at]);
      const baseline = await statusEvents();

      expect(await store.sweepStatuses(at(NOW + OFFLINE))).toEqual([]);
      const t1 = NOW + OFFLINE + 1;
      expect(await store.sweepStatuses(at(t1), NOW + OFFLINE)).toEqual([
        { deviceId: 'a', from: 'online', to: 'offline' },
        { deviceId: 'b', from: 'online', to: 'offline' },
      ]);
      expect(await store.sweepStatuses(at(t1))).toEqual([]);
      await store.recordHeartbeats([heartbeat('b')], at(t1 + 1));

      const t2 = NOW + ABANDONED + 1;
      expect(await store.sweepStatuses(at(t2), t1)).toEqual([
        { deviceId: 'a', from: 'offline', to: 'abandoned' },
        { deviceId: 'b', from: 'online', to: 'offline' },
      ]);
      expect(await store.sweepStatuses(at(t2))).toEqual([]);

      expect((await statusEvents()).slice(baseline.length)).toEqual([
        ['a', { from: 'online', to: 'offline' }, t1],
        ['b', { from: 'online', to: 'offline' }, t1],
        ['b', { from: 'offline', to: 'online' }, t1 + 1],
        ['a', { from: 'offline', to: 'abandoned' }, t2],
        ['b', { from: 'online', to: 'offline' }, t2],
      ]);
      expect((await store.getDevice('a', at(t2)))?.status).toBe('abandoned');
      expect((await store.getDevice('never', at(t2)))?.status).toBe('unknown');
    });

    it('moves a device silent past both thresholds straight to abandoned', async () => {
      await store.importDevices([{ id: 'c' }], ctx, 'test');
      await withCredentials(store, ['c']);
      await store.recordHeartbeats([heartbeat('c')], ctx);
      const later = at(NOW + ABANDONED + 1);
      expect(await store.sweepStatuses(later)).toEqual([{ deviceId: 'c', from: 'online', to: 'abandoned' }]);
      expect(await store.sweepStatuses(later)).toEqual([]);
      const events = await allEvents(store, { deviceId: 'c', typePrefix: 'device.status' });
      expect(events.map((e) => e.data)).toEqual([
        { from: 'unknown', to: 'online' },
        { from: 'online', to: 'abandoned' },
      ]);
    });

    it('sweeps more devices than one chunk holds', async () => {
      const n = 5_203;
      await store.importDevices(
        Array.from({ length: n }, (_, i) => ({ id: `d-${String(i).padStart(5, '0')}`, lastSeen: NOW })),
        ctx,
        'test',
      );
      const before = (await allEvents(store, { typePrefix: 'device.status' })).length;
      const moved = await store.sweepStatuses(at(NOW + OFFLINE + 1));
      expect(moved).toHaveLength(n);
      expect(new Set(moved.map((t) => t.deviceId)).size).toBe(n);
      expect(moved.every((t) => t.from === 'online' && t.to === 'offline')).toBe(true);
      expect(await allEvents(store, { typePrefix: 'device.status' })).toHaveLength(before + n);
      expect(await store.sweepStatuses(at(NOW + OFFLINE + 2))).toEqual([]);
      expect(await store.countDevices(filter('status = offline'), at(NOW + OFFLINE + 2))).toBe(n);
    });
  });

  describe('fleetStats', () => {
    const VERSIONS = ['2.2.0', '2.2', '10.0.0', '2.10.0-rc.1', '2.2.0+b7', 'banana', null, '1.9.9', '2.10.0'];
    const SILENCES = [
      0,
      OFFLINE,
      OFFLINE + 1,
      DAY,
      DAY + 1,
      ABANDONED,
      ABANDONED + 1,
      90 * DAY,
      null,
      5 * MINUTE,
      2 * DAY,
    ];
    const silence = (i: number) => SILENCES[i % SILENCES.length] ?? null;
    const noTags: Record<string, string> = {};
    const records: DeviceRecord[] = Array.from({ length: 97 }, (_, i) => ({
      id: `s-${i}`,
      firmwareVersion: VERSIONS[i % VERSIONS.length] ?? null,
      hardwareType: [null, 'pi4', 'Pi4', 'x86'][i % 4] ?? null,
      lastSeen: silence(i) === null ? null : NOW - silence(i)!,
      tags:
        i % 5 === 0 ? noTags : { region: ['west', 'east', 'north'][i % 3]!, ring: i % 2 ? 'beta' : 'prod' },
    }));
    const decommissioned = new Set(records.filter((_, i) => i % 13 === 0).map((r) => r.id));

    beforeEach(async () => {
      await store.importDevices(records, at(NOW - 100 * DAY), 'test');
      for (const id of decommissioned) await store.decommissionDevice(id, at(NOW - DAY), 'test');
    });

    function expectedStats(keep: (r: DeviceRecord) => boolean, tagKeys?: string[]) {
      const kept = records.filter(keep);
      const active = kept.filter((r) => !decommissioned.has(r.id));
      const byStatus = { online: 0, offline: 0, abandoned: 0, unknown: 0, decommissioned: 0 };
      for (const r of kept) {
        byStatus[deviceStatus(r.lastSeen ?? null, decommissioned.has(r.id) ? NOW - DAY : null, NOW)]++;
      }
      const firmware = new Map<string | null, number>();
      const hardware = new Map<string | null, number>();
      const tags: Record<string, Record<string, number>> = {};
      for (const r of active) {
        firmware.set(r.firmwareVersion ?? null, (firmware.get(r.firmwareVersion ?? null) ?? 0) + 1);
        hardware.set(r.hardwareType ?? null, (hardware.get(r.hardwareType ?? null) ?? 0) + 1);
        for (const [k, v] of Object.entries(r.tags ?? {})) {
          if (tagKeys && !tagKeys.includes(k)) continue;
          tags[k] ??= {};
          tags[k][v] = (tags[k][v] ?? 0) + 1;
        }
      }
      const silentFor = (ms: number) =>
        active.filter((r) => r.lastSeen != null && r.lastSeen < NOW - ms).length;
      return {
        total: kept.length,
        byStatus,
        firmware: [...firmware].map(([version, count]) => ({ version, count })),
        hardware: [...hardware].map(([hardwareType, count]) => ({ hardwareType, count })),
        tags,
        silent: { over24h: silentFor(DAY), over30d: silentFor(30 * DAY) },
      };
    }

    it('counts statuses as deviceStatus() does and breaks the fleet down', async () => {
      const stats = await store.fleetStats(undefined, undefined, ctx);
      const expected = expectedStats(() => true);
      expect(stats.total).toBe(97);
      expect(stats.byStatus).toEqual(expected.byStatus);
      expect(Object.values(stats.byStatus).reduce((a, b) => a + b)).toBe(97);
      expect(stats.silent).toEqual(expected.silent);
      expect(stats.tags).toEqual(expected.tags);
      expect(stats.firmware).toEqual(expect.arrayContaining(expected.firmware));
      expect(stats.firmware).toHaveLength(expected.firmware.length);
      expect(stats.hardware).toEqual(expect.arrayContaining(expected.hardware));
      expect(stats.hardware).toHaveLength(expected.hardware.length);

      // Firmware by semver precedence, highest first; versions that do not parse come last.
      const keys = stats.firmware.map((f) => (f.version === null ? null : versionKey(f.version)));
      const parsed = keys.filter((k) => k !== null);
      expect(keys.slice(0, parsed.length)).toEqual(parsed);
      expect(parsed).toEqual([...parsed].sort().reverse());
      expect(stats.firmware.slice(0, 2).map((f) => f.version)).toEqual(['10.0.0', '2.10.0']);
      // Exactly the same order on every backend, ties (2.2 / 2.2.0 / 2.2.0+b7, null / banana) included.
      expect(stats.firmware.map((f) => f.version)).toEqual([
        '10.0.0',
        '2.10.0',
        '2.10.0-rc.1',
        '2.2',
        '2.2.0',
        '2.2.0+b7',
        '1.9.9',
        'banana',
        null,
      ]);
      expect(stats.hardware.map((h) => h.hardwareType)).toEqual([null, 'Pi4', 'pi4', 'x86']);
    });

    it('limits every figure to the filter and the tag keys asked for', async () => {
      const f = filter('tag.region in (west, east) and hardware != x86');
      const devices = await allDevices(store);
      const matching = new Set(devices.filter((d) => matchesFilter(f, d, ctx)).map((d) => d.id));
      const stats = await store.fleetStats(f, ['ring'], ctx);
      const expected = expectedStats((r) => matching.has(r.id), ['ring']);
      expect(stats.total).toBe(matching.size);
      expect(stats.byStatus).toEqual(expected.byStatus);
      expect(stats.silent).toEqual(expected.silent);
      expect(stats.tags).toEqual(expected.tags);
      expect(Object.keys(stats.tags)).toEqual(['ring']);
      expect(stats.firmware).toEqual(expect.arrayContaining(expected.firmware));
      expect(stats.firmware).toHaveLength(expected.firmware.length);
    });

    it('counts an empty selection as zeros', async () => {
      const stats = await store.fleetStats(filter('id = "nothing"'), undefined, ctx);
      expect(stats).toEqual({
        total: 0,
        byStatus: { online: 0, offline: 0, abandoned: 0, unknown: 0, decommissioned: 0 },
        firmware: [],
        hardware: [],
        tags: {},
        silent: { over24h: 0, over30d: 0 },
      });
    });
  });

  describe('fleet history', () => {
    it('records snapshots of the counts by status and reads them back over a period, in order', async () => {
      await store.importDevices(
        [
          { id: 'h-on', lastSeen: NOW - MINUTE },
          { id: 'h-off', lastSeen: NOW - OFFLINE - 1 },
          { id: 'h-new' },
        ],
        ctx,
        'alice',
      );
      const first = await store.recordFleetSnapshot(ctx);
      expect(first.byStatus).toEqual({ online: 1, offline: 1, abandoned: 0, unknown: 1, decommissioned: 0 });
      await store.recordFleetSnapshot(at(NOW + 10 * MINUTE));
      await store.recordFleetSnapshot(at(NOW + 10 * MINUTE)); // the same instant twice: recorded once
      const history = await store.fleetHistory(NOW, NOW + DAY);
      expect(history.map((h) => h.at)).toEqual([NOW, NOW + 10 * MINUTE]);
      expect(history[1]!.byStatus.online).toBe(0);
      expect(await store.fleetHistory(NOW + MINUTE, NOW + DAY)).toHaveLength(1);
    });
  });

  describe('enroll', () => {
    const enrollment = (token: string, id: string, extra: Partial<DeviceRecord> = {}) => ({
      tokenHash: hashSecret(token),
      device: { id, ...extra },
      credentialHash: hashSecret(secretOf(id)),
    });
    const token = (
      id: string,
      usesLeft: number | null,
      expiresAt: number | null = null,
      claim: string | null = null,
    ) => ({
      id,
      usesLeft,
      expiresAt,
      tags: { ring: 'canary', site: 'lab' },
      createdAt: NOW - DAY,
      claim,
    });

    it('consumes uses and refuses an exhausted, expired or unknown token', async () => {
      await store.createEnrollmentToken(token('two', 2), hashSecret('tok-two'), 'alice');
      await store.createEnrollmentToken(token('old', null, NOW), hashSecret('tok-old'), 'alice');
      await store.createEnrollmentToken(token('open', null, NOW + 1), hashSecret('tok-open'), 'alice');

      const first = await store.enroll(enrollment('tok-two', 'e-1', { tags: { site: 'home' } }), ctx);
      expect(first).toMatchObject({
        id: 'e-1',
        status: 'unknown',
        hasCredential: true,
        tags: { ring: 'canary', site: 'home' },
      });
      expect(await store.credentialHash('e-1')).toBe(hashSecret(secretOf('e-1')));
      expect(await store.countDevices(filter('tag.ring = canary and tag.site = home'), ctx)).toBe(1);
      await store.enroll(enrollment('tok-two', 'e-2'), ctx);
      await expect(store.enroll(enrollment('tok-two', 'e-3'), ctx)).rejects.toMatchObject({
        code: 'ENROLLMENT_INVALID',
      });
      await expect(store.enroll(enrollment('tok-old', 'e-3'), ctx)).rejects.toMatchObject({
        code: 'ENROLLMENT_INVALID',
      });
      await expect(store.enroll(enrollment('tok-none', 'e-3'), ctx)).rejects.toMatchObject({
        code: 'ENROLLMENT_INVALID',
      });
      await store.enroll(enrollment('tok-open', 'e-3'), ctx);
      expect(await store.getDevice('e-3', ctx)).toBeDefined();

      const events = await allEvents(store);
      expect(events.filter((e) => e.type === 'enrollment.created').map((e) => e.data)).toEqual([
        { id: 'two', usesLeft: 2, expiresAt: null },
        { id: 'old', usesLeft: null, expiresAt: NOW },
        { id: 'open', usesLeft: null, expiresAt: NOW + 1 },
      ]);
      expect(
        events.filter((e) => e.type === 'device.enrolled').map((e) => [e.deviceId, e.actor, e.reason]),
      ).toEqual([
        ['e-1', 'enrollment:two', 'self-registration'],
        ['e-2', 'enrollment:two', 'self-registration'],
        ['e-3', 'enrollment:open', 'self-registration'],
      ]);
    });

    it('lets an imported device claim its entry once, with a token whose claim filter matches it', async () => {
      await store.importDevices(
        [
          { id: 'imp', name: 'Imported', hardwareType: 'gw-1' },
          { id: 'elsewhere', hardwareType: 'gw-2' },
        ],
        ctx,
        'test',
      );
      await store.createEnrollmentToken(token('one', 1), hashSecret('tok-one'), 'alice');
      await store.createEnrollmentToken(
        token('more', 5, null, 'hardware = gw-1'),
        hashSecret('tok-more'),
        'alice',
      );

      // A token without a claim filter, or whose filter does not match, cannot take an imported device over.
      for (const [tok, id] of [
        ['tok-one', 'imp'],
        ['tok-more', 'elsewhere'],
      ] as const) {
        await expect(store.enroll(enrollment(tok, id), ctx)).rejects.toMatchObject({
          code: 'DEVICE_EXISTS',
          message: expect.stringMatching(/may not claim it/),
        });
        expect(await store.credentialHash(id)).toBeUndefined();
      }

      const claimed = await store.enroll(
        enrollment('tok-more', 'imp', { hardwareType: 'other', firmwareVersion: '1.2.3', tags: { a: 'b' } }),
        at(NOW + 1),
      );
      // Registry facts win; what the registry did not know is filled in; tags stay the registry's.
      expect(claimed).toMatchObject({
        id: 'imp',
        name: 'Imported',
        hardwareType: 'gw-1',
        firmwareVersion: '1.2.3',
        tags: {},
        createdAt: NOW,
        hasCredential: true,
      });
      expect(await store.countDevices(filter('firmware = 1.2.3'), ctx)).toBe(1);
      const enrolled = (await allEvents(store)).filter((e) => e.type === 'device.enrolled');
      expect(enrolled.map((e) => e.reason)).toEqual(['claimed a registered device']);

      // Already enrolled: refused, and the failed attempt does not use up the token.
      await expect(store.enroll(enrollment('tok-one', 'imp'), ctx)).rejects.toMatchObject({
        code: 'DEVICE_EXISTS',
      });
      await store.enroll(enrollment('tok-one', 'other'), ctx);
      await expect(store.enroll(enrollment('tok-one', 'third'), ctx)).rejects.toMatchObject({
        code: 'ENROLLMENT_INVALID',
      });

      await store.decommissionDevice('other', ctx, 'test');
      await expect(store.enroll(enrollment('tok-more', 'other'), ctx)).rejects.toMatchObject({
        code: 'DEVICE_DECOMMISSIONED',
      });
    });

    it('gives the last use of a token to exactly one of concurrent enrollments', async () => {
      await store.createEnrollmentToken(token('last', 1), hashSecret('tok-last'), 'alice');
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, (_, i) => store.enroll(enrollment('tok-last', `race-${i}`), ctx)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'ENROLLMENT_INVALID' });
      }
      expect(await store.countDevices(undefined, ctx)).toBe(1);
    });

    it('lets exactly one of concurrent enrollments of the same new id win; the others get DEVICE_EXISTS', async () => {
      await store.createEnrollmentToken(token('many', null), hashSecret('tok-many'), 'alice');
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, () => store.enroll(enrollment('tok-many', 'twin'), ctx)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'DEVICE_EXISTS' });
      }
    });

    it('lists tokens without their secrets and revokes one for good', async () => {
      await store.createEnrollmentToken(
        token('a', 2, NOW + DAY, 'tag.site = x'),
        hashSecret('tok-a'),
        'alice',
      );
      await store.createEnrollmentToken(
        { ...token('b', null), createdAt: NOW },
        hashSecret('tok-b'),
        'alice',
      );
      const listed = await store.listEnrollmentTokens();
      expect(listed).toEqual([
        { ...token('b', null), createdAt: NOW, revokedAt: null },
        { ...token('a', 2, NOW + DAY, 'tag.site = x'), revokedAt: null },
      ]);
      expect(JSON.stringify(listed)).not.toMatch(/tok-|[0-9a-f]{64}/);

      await store.revokeEnrollmentToken('b', NOW + 1, 'bob');
      expect((await store.listEnrollmentTokens())[0]).toMatchObject({ id: 'b', revokedAt: NOW + 1 });
      await expect(store.enroll(enrollment('tok-b', 'r-1'), ctx)).rejects.toMatchObject({
        code: 'ENROLLMENT_INVALID',
      });
      await expect(store.revokeEnrollmentToken('b', NOW, 'bob')).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(store.revokeEnrollmentToken('nope', NOW, 'bob')).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      const revoked = await store.listEvents({ typePrefix: 'enrollment.revoked', limit: 10 });
      expect(revoked.map((e) => [e.actor, e.data])).toEqual([['bob', { id: 'b' }]]);
    });
  });

  describe('rollout creation', () => {
    const spec = (name: string, extra: Record<string, unknown> = {}) =>
      parseRolloutSpec({ name, release: 'fw@2.0.0', filter: '', strategy: 'immediate', ...extra });

    beforeEach(async () => {
      await store.importDevices(
        Array.from({ length: 40 }, (_, i) => ({
          id: `r-${String(i).padStart(2, '0')}`,
          hardwareType: 'hw-a',
          firmwareVersion: i === 39 ? '2.0.0' : '1.0.0',
          lastSeen: i % 4 ? NOW - MINUTE : null,
        })),
        ctx,
        'test',
      );
      for (const version of ['1.5.0', '2.0.0']) {
        await store.releases.create(testRelease(`rel-${version}`, version, NOW), 'test');
      }
    });

    it('cancels exactly the updates waiting elsewhere; a device at work is left out, its update untouched', async () => {
      // r-00: assigned directly, waiting; r-01: assigned and downloading; r-02, r-03: scheduled in another rollout.
      const assigned = await store.updates.assign(
        ['r-00', 'r-01'],
        'rel-1.5.0',
        { action: 'install' },
        ctx,
        'test',
      );
      const [waiting, working] = assigned.assigned;
      await store.updates.offer(['r-01'], ctx);
      await store.updates.report('r-01', working!.id, { seq: 1, state: 'downloading' }, ctx);
      const later = { filter: 'id in (r-02, r-03)', scheduled_at: new Date(NOW + DAY).toISOString() };
      const { rollout: other } = await createRollout(store, spec('other', later), ctx, 'test');

      const { rollout, plan } = await createRollout(store, spec('all'), at(NOW + 1), 'alice');
      expect(plan.targets.find((t) => t.deviceId === 'r-01')).toMatchObject({
        state: 'skipped',
        reason: `busy with update ${working!.id}`,
      });
      const cancelled = await store.listEvents({ typePrefix: 'update.cancelled', limit: 100 });
      const superseded = await store.updates.list({ state: 'cancelled', limit: 100 });
      expect(superseded.map((u) => u.deviceId).sort()).toEqual(['r-00', 'r-02', 'r-03']);
      expect(cancelled.map((e) => [e.deviceId, e.rolloutId, e.reason, e.data]).sort()).toEqual(
        superseded
          .map((u) => [
            u.deviceId,
            u.rolloutId,
            `superseded by rollout ${rollout.id}`,
            { update: u.id, from: u.deviceId === 'r-00' ? 'pending' : 'scheduled', to: 'cancelled' },
          ])
          .sort(),
      );
      expect(superseded.find((u) => u.id === waiting!.id)).toMatchObject({
        rolloutId: null,
        finishedAt: NOW + 1,
      });
      expect(superseded.filter((u) => u.rolloutId === other.id)).toHaveLength(2);
      expect(await store.updates.get(working!.id)).toMatchObject({ state: 'downloading' });
      // The new rollout's own updates are all still there to start.
      expect(await store.updates.list({ rolloutId: rollout.id, state: 'pending', limit: 100 })).toHaveLength(
        38,
      );
    });

    it('writes the plan its dry run shows, one update per device, ids unique and in the order written', async () => {
      const progressive = spec('p', {
        strategy: 'progressive',
        seed: 3,
        phases: [
          { name: 'canary', percentage: 10, wait: '1h' },
          { name: 'all', percentage: 100, wait: '1h' },
        ],
      });
      const dry = await planFor(store, progressive, ctx);
      const { rollout, plan } = await createRollout(store, progressive, ctx, 'alice');
      expect(plan).toEqual(dry.plan);
      const updates = await store.updates.list({ rolloutId: rollout.id, limit: 100 });
      expect(updates).toHaveLength(40);
      const byDevice = new Map(updates.map((u) => [u.deviceId, u]));
      for (const t of plan.targets) {
        expect(byDevice.get(t.deviceId)).toMatchObject({
          phase: t.phase,
          state: t.state,
          error: t.reason,
          fromVersion: t.fromVersion,
          finishedAt: t.state === 'skipped' ? NOW : null,
        });
      }
      const ids = updates.map((u) => u.id);
      expect(new Set(ids).size).toBe(40);
      for (const id of ids) expect(id).toMatch(/^upd_[0-9a-f]{24}$/);
      // Made before any id made after them, in this process or the database.
      const next = newUpdateId();
      expect(ids.every((id) => id < next)).toBe(true);
      expect(await store.listEvents({ rolloutId: rollout.id, limit: 10 })).toEqual([
        expect.objectContaining({
          type: 'rollout.created',
          actor: 'alice',
          data: {
            state: 'running',
            targets: 39,
            skipped: { 'already runs 2.0.0': 1 },
            seed: 3,
          },
        }),
      ]);
    });
  });

  describe('decommissionDevice', () => {
    it('removes the credential once and refuses a second time', async () => {
      await store.importDevices([{ id: 'd', lastSeen: NOW - MINUTE }], ctx, 'test');
      await withCredentials(store, ['d']);
      expect(await store.credentialHash('d')).toBe(hashSecret(secretOf('d')));

      const device = await store.decommissionDevice('d', at(NOW + 1), 'alice');
      expect(device).toMatchObject({
        status: 'decommissioned',
        decommissionedAt: NOW + 1,
        hasCredential: false,
      });
      expect(await store.credentialHash('d')).toBeUndefined();
      expect(await store.getDevice('d', at(NOW + 2))).toMatchObject({
        status: 'decommissioned',
        hasCredential: false,
      });
      await expect(store.decommissionDevice('d', at(NOW + 2), 'alice')).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      await expect(store.decommissionDevice('nobody', ctx, 'alice')).rejects.toMatchObject({
        code: 'DEVICE_NOT_FOUND',
      });
      await expect(store.setCredential('d', hashSecret('x'), ctx, 'alice')).rejects.toMatchObject({
        code: 'DEVICE_DECOMMISSIONED',
      });
      await expect(store.setCredential('nobody', hashSecret('x'), ctx, 'alice')).rejects.toMatchObject({
        code: 'DEVICE_NOT_FOUND',
      });
      expect(await store.recordHeartbeats([heartbeat('d')], at(NOW + 3))).toEqual([
        { ok: false, reason: 'unauthenticated' },
      ]);

      const events = await allEvents(store, { deviceId: 'd' });
      expect(events.map((e) => [e.type, e.actor, e.data])).toEqual([
        ['device.registered', 'test', {}],
        ['device.credential_issued', 'test', {}],
        ['device.status', 'alice', { from: 'online', to: 'decommissioned' }],
      ]);
      // Decommissioned devices leave the statistics but stay counted.
      const stats = await store.fleetStats(undefined, undefined, at(NOW + 3));
      expect(stats.total).toBe(1);
      expect(stats.byStatus.decommissioned).toBe(1);
    });
  });

  describe('what the ETA reads', () => {
    it("statusHistory: each device's registration and status changes since an instant, oldest first", async () => {
      await store.importDevices([{ id: 'a' }, { id: 'b' }, { id: 'quiet' }], ctx, 'test');
      await withCredentials(store, ['a', 'b']);
      await store.recordHeartbeats([heartbeat('a'), heartbeat('b')], ctx);
      const t1 = NOW + OFFLINE + 1;
      await store.sweepStatuses(at(t1));
      // A sampled server's pair: offline and online again at one instant.
      await store.recordHeartbeats([heartbeat('a')], at(t1));
      const history = await store.rollouts.statusHistory(['a', 'b', 'quiet', 'missing'], NOW);
      expect(history.get('a')).toEqual({
        registeredAt: NOW,
        changes: [
          { at: NOW, online: true },
          { at: t1, online: false },
          { at: t1, online: true },
        ],
      });
      expect(history.get('b')).toEqual({
        registeredAt: NOW,
        changes: [
          { at: NOW, online: true },
          { at: t1, online: false },
        ],
      });
      expect(history.get('quiet')).toEqual({ registeredAt: NOW, changes: [] });
      expect(history.has('missing')).toBe(false);
      expect((await store.rollouts.statusHistory(['a'], NOW + 1)).get('a')!.changes).toHaveLength(2);
    });

    it('waitingDevices: the same sample on every call, with zone and hardware; updateDurations: granted → finished', async () => {
      await store.releases.create(testRelease('rel_eta', '2.0.0', NOW, ['hw-a', 'hw-b']), 'test');
      const ids = ['d1', 'd2', 'd3', 'd4', 'd5'];
      await store.importDevices(
        ids.map((id, i) => ({
          id,
          firmwareVersion: '1.0.0',
          hardwareType: i < 2 ? 'hw-a' : 'hw-b',
          timezone: 'Europe/Paris',
        })),
        ctx,
        'test',
      );
      await withCredentials(store, ids);
      await store.recordHeartbeats(
        ids.map((id) => heartbeat(id)),
        ctx,
      );
      const spec = parseRolloutSpec({ name: 'eta', release: 'fw@2.0.0', filter: '', strategy: 'immediate' });
      const { rollout } = await createRollout(store, spec, ctx, 'test');

      const sample = await store.rollouts.waitingDevices(rollout.id, 3);
      expect(sample.total).toBe(5);
      expect(sample.devices).toHaveLength(3);
      expect(await store.rollouts.waitingDevices(rollout.id, 3)).toEqual(sample);
      const all = await store.rollouts.waitingDevices(rollout.id, 10);
      expect(all.devices.map((d) => d.deviceId).sort()).toEqual(ids);
      expect(all.devices.find((d) => d.deviceId === 'd1')).toEqual({
        deviceId: 'd1',
        phase: 0,
        lastSeen: NOW,
        timezone: 'Europe/Paris',
        hardwareType: 'hw-a',
        // In no connectivity class: the server's threshold applies.
        offlineAfterMs: null,
      });

      // d1 and d2 are handed their slot a minute later; d1 succeeds after 10 minutes, d2 fails after 20.
      const granted = await store.updates.offer(['d1', 'd2'], at(NOW + MINUTE));
      const updateOf = (id: string) => granted.get(id)![0]!.update.id;
      await store.updates.report('d1', updateOf('d1'), { seq: 1, state: 'succeeded' }, at(NOW + 11 * MINUTE));
      await store.updates.report(
        'd2',
        updateOf('d2'),
        { seq: 1, state: 'failed', error: 'x' },
        at(NOW + 21 * MINUTE),
      );
      expect((await store.rollouts.updateDurations(rollout.id, 10)).sort((x, y) => x - y)).toEqual([
        10 * MINUTE,
        20 * MINUTE,
      ]);
      expect(await store.rollouts.updateDurations(rollout.id, 1)).toHaveLength(1);
      expect((await store.rollouts.waitingDevices(rollout.id, 10)).total).toBe(3);
    });
  });

  describe('events', () => {
    const TYPES = ['a_b.x', 'axb.x', 'a%c', 'abc', 'a\\b', 'A_B.x', 'update.done', 'update_done'];

    beforeEach(async () => {
      await store.appendEvents(
        TYPES.map((type, i) => ({
          at: NOW + i,
          type,
          deviceId: i % 2 ? 'dev-odd' : 'dev-even',
          rolloutId: i < 3 ? 'r-1' : null,
          actor: i === 0 ? 'alice' : null,
          reason: i === 0 ? 'because' : null,
          data: { i, nested: { list: [1, 'two', null] } },
        })),
      );
    });

    const types = (events: StoredEvent[]) => events.map((e) => e.type);

    it('stores events in order with their fields', async () => {
      const events = await store.listEvents({ limit: 100 });
      expect(types(events)).toEqual(TYPES);
      expect(events[0]).toEqual({
        id: events[0]!.id,
        at: NOW,
        type: 'a_b.x',
        deviceId: 'dev-even',
        rolloutId: 'r-1',
        actor: 'alice',
        reason: 'because',
        data: { i: 0, nested: { list: [1, 'two', null] } },
      });
      expect(typeof events[0]!.id).toBe('number');
      const ids = events.map((e) => e.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('pages with after and limit', async () => {
      const all = await store.listEvents({ limit: 100 });
      const seen: StoredEvent[] = [];
      for (let after = 0; ; ) {
        const page = await store.listEvents({ after, limit: 3 });
        if (page.length === 0) break;
        seen.push(...page);
        after = page[page.length - 1]!.id;
      }
      expect(seen).toEqual(all);
      expect(types(await store.listEvents({ after: all[5]!.id, limit: 100 }))).toEqual(TYPES.slice(6));
    });

    it('filters by device, rollout and a literal type prefix', async () => {
      expect(types(await store.listEvents({ deviceId: 'dev-odd', limit: 100 }))).toEqual(
        TYPES.filter((_, i) => i % 2),
      );
      expect(types(await store.listEvents({ rolloutId: 'r-1', limit: 100 }))).toEqual(TYPES.slice(0, 3));
      const prefixed = async (typePrefix: string) =>
        types(await store.listEvents({ typePrefix, limit: 100 }));
      // `_` and `%` are not wildcards, `\` is not an escape, and the match is case-sensitive.
      expect(await prefixed('a_b')).toEqual(['a_b.x']);
      expect(await prefixed('a%')).toEqual(['a%c']);
      expect(await prefixed('a\\')).toEqual(['a\\b']);
      expect(await prefixed('a')).toEqual(['a_b.x', 'axb.x', 'a%c', 'abc', 'a\\b']);
      expect(await prefixed('update.')).toEqual(['update.done']);
      expect(await prefixed('update_')).toEqual(['update_done']);
      expect(await prefixed('')).toEqual(TYPES);
      expect(await prefixed('%')).toEqual([]);
      expect(
        types(await store.listEvents({ typePrefix: 'a', deviceId: 'dev-even', after: 0, limit: 100 })),
      ).toEqual(['a_b.x', 'a%c', 'a\\b']);
    });
  });

  describe('tokens', () => {
    it('replacing the admin token revokes the old one and records who did it', async () => {
      const admin = { id: 'tok-a', name: 'admin', role: 'admin' as const, createdAt: NOW };
      await store.createApiToken(admin, hashSecret('old-admin'));
      await store.createApiToken({ ...admin, id: 'tok-ci', name: 'ci' }, hashSecret('ci'));
      const fresh = { ...admin, id: 'tok-b', createdAt: NOW + 1 };
      expect(await store.replaceApiToken(fresh, hashSecret('new-admin'), 'local:admin-token reset')).toBe(1);
      expect(await store.findApiToken(hashSecret('old-admin'))).toBeUndefined();
      expect(await store.findApiToken(hashSecret('new-admin'))).toEqual(fresh);
      expect(await store.findApiToken(hashSecret('ci'))).toMatchObject({ id: 'tok-ci' });
      const events = await store.listEvents({ typePrefix: 'api_token.', limit: 10 });
      expect(events.map((e) => [e.type, e.actor, e.data])).toEqual([
        ['api_token.replaced', 'local:admin-token reset', { id: 'tok-b', name: 'admin', role: 'admin' }],
      ]);
    });

    it('finds API tokens by hash and counts them', async () => {
      expect(await store.countApiTokens()).toBe(0);
      const token = { id: 'tok-1', name: 'ci', role: 'operator' as const, createdAt: NOW };
      await store.createApiToken(token, hashSecret('api-1'));
      await store.createApiToken({ ...token, id: 'tok-2', role: 'viewer' }, hashSecret('api-2'));
      expect(await store.findApiToken(hashSecret('api-1'))).toEqual(token);
      expect((await store.findApiToken(hashSecret('api-2')))?.role).toBe('viewer');
      expect(await store.findApiToken(hashSecret('nope'))).toBeUndefined();
      expect(await store.countApiTokens()).toBe(2);
      // A hash names one token.
      await expect(store.createApiToken({ ...token, id: 'tok-3' }, hashSecret('api-1'))).rejects.toThrow();
      expect(await store.countApiTokens()).toBe(2);
    });

    it('records the creation of an enrollment token as an event', async () => {
      await store.createEnrollmentToken(
        { id: 'en-1', usesLeft: 3, expiresAt: NOW + DAY, tags: { a: 'b' }, createdAt: NOW },
        hashSecret('en'),
        'alice',
      );
      expect(await store.listEvents({ typePrefix: 'enrollment.', limit: 10 })).toEqual([
        expect.objectContaining({
          at: NOW,
          type: 'enrollment.created',
          actor: 'alice',
          data: { id: 'en-1', usesLeft: 3, expiresAt: NOW + DAY },
        }),
      ]);
      await expect(
        store.createEnrollmentToken(
          { id: 'en-2', usesLeft: null, expiresAt: null, tags: {}, createdAt: NOW },
          hashSecret('en'),
          'alice',
        ),
      ).rejects.toThrow();
      // The failed creation left no event behind.
      expect(await store.listEvents({ typePrefix: 'enrollment.', limit: 10 })).toHaveLength(1);
    });
  });
});
