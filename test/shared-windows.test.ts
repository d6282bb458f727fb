/**
 * Windows on a group and on a tag value: under `window: device_defined` a device takes its own windows, else the
 * union of its groups', else the union of its tag values', else the rollout's fallback window; the offer, the
 * device's windows reply and the listings say so. The real API, store and engine on a manual clock, on SQLite
 * and PostgreSQL.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtualFleet } from '../src/sim/virtual-fleet.js';
import { create, HOUR, MINUTE, syntheticFleet } from './support/rollouts.js';
import { forEachDatabase } from './support/stores.js';

const START = Date.parse('2026-01-05T12:00:00Z'); // a Monday, 12:00 UTC

let fleet: VirtualFleet | undefined;
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * dev-0000: own window 20:00-21:00 and customer=acme; dev-0001: in group east (dynamic, region=east) and in
 * static group pilots, and customer=acme; dev-0002: customer=acme and site=mall; dev-0003: nothing.
 */
async function fleetOf(db: string | undefined) {
  const tags: Array<Record<string, string>> = [
    { customer: 'acme' },
    { customer: 'acme', region: 'east' },
    { customer: 'acme', site: 'mall' },
    {},
  ];
  const f = await VirtualFleet.create({ start: START, db });
  fleet = f;
  await f.importFleet(syntheticFleet(4, { tags: (i) => tags[i]! }));
  await f.release('fw', '2.0.0', ['hw-a']);
  const call = async (
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    url: string,
    body?: unknown,
    token?: string,
  ) => {
    const r = await f.parts.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token ?? f.adminToken}` },
      ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
    });
    return { status: r.statusCode, body: r.json() } as Answer;
  };
  const ok = async (method: 'PUT' | 'POST', url: string, body: unknown) => {
    const r = await call(method, url, body);
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    return r.body;
  };
  await ok('POST', '/api/v1/groups', { name: 'east', filter: 'tag.region = east' });
  await ok('POST', '/api/v1/groups', { name: 'pilots' });
  await ok('POST', '/api/v1/groups/pilots/add', { ids: ['dev-0001'] });
  return { f, call, ok };
}

const window = (start: string, end: string) => ({ start, end });

forEachDatabase((database) => {
  let db: string | undefined;
  beforeEach(async () => {
    db = await database.fresh();
  });

  describe('windows on groups and tag values', () => {
    it('a device takes its own windows, else its groups’ (union), else its tags’ (union), else the fallback', async () => {
      const { f, call, ok } = await fleetOf(db);
      await ok('PUT', '/api/v1/devices/dev-0000/windows', { windows: [window('20:00', '21:00')] });
      await ok('PUT', '/api/v1/windows/groups/east', { windows: [window('14:00', '15:00')] });
      await ok('PUT', '/api/v1/windows/groups/pilots', { windows: [window('16:00', '17:00')] });
      const acme = await ok('PUT', '/api/v1/windows/tags/customer/acme', {
        windows: [window('18:00', '19:00')],
      });
      expect(acme).toMatchObject({
        key: 'customer',
        value: 'acme',
        windows: [{ start: '18:00', end: '19:00' }],
      });
      await ok('PUT', '/api/v1/windows/tags/site/mall', { windows: [window('13:00', '13:30')] });

      const resolved = async (id: string) =>
        (await call('GET', `/api/v1/devices/${id}/windows`)).body.resolved as {
          source: string;
          from: string[];
          windows: Array<{ start: string }>;
        } | null;
      expect(await resolved('dev-0000')).toMatchObject({
        source: 'device',
        from: [],
        windows: [{ start: '20:00' }],
      });
      expect(await resolved('dev-0001')).toMatchObject({
        source: 'group',
        from: ['east', 'pilots'],
        windows: [{ start: '14:00' }, { start: '16:00' }],
      });
      expect(await resolved('dev-0002')).toMatchObject({
        source: 'tag',
        from: ['customer=acme', 'site=mall'],
        windows: [{ start: '18:00' }, { start: '13:00' }],
      });
      expect(await resolved('dev-0003')).toBeNull();

      // The dry run plans each device in the windows it takes: 13:00 (mall), 14:00 (east), 20:00 (its own),
      // and 02:00 tomorrow (the fallback).
      const spec = {
        name: 'their windows',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'on_connect',
        window: 'device_defined',
        fallback_window: window('02:00', '03:00'),
      };
      const dry = await call('POST', '/api/v1/rollouts?dry_run=true', spec);
      expect(dry.status).toBe(200);
      const at = (h: number) => new Date(START + h * HOUR).toISOString();
      expect(dry.body.windows).toMatchObject([
        { timezone: 'UTC', devices: 1, opens_at: at(1) },
        { timezone: 'UTC', devices: 1, opens_at: at(2) },
        { timezone: 'UTC', devices: 1, opens_at: at(8) },
        { timezone: 'UTC', devices: 1, opens_at: at(14) },
      ]);

      await create(f, {
        name: 'their windows',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'on_connect',
        window: 'device_defined',
        fallback_window: window('02:00', '03:00'),
      });
      await f.tick();
      const all = ['dev-0000', 'dev-0001', 'dev-0002', 'dev-0003'];
      const started = async (at: number) => {
        f.advance(at - f.clock.now());
        await f.tick();
        return (await f.connect(all)).map((r) => r.deviceId);
      };
      expect(await started(START)).toEqual([]); // 12:00: nobody's window
      expect(await started(START + HOUR + 5 * MINUTE)).toEqual(['dev-0002']); // 13:05: site=mall
      expect(await started(START + 2 * HOUR + 5 * MINUTE)).toEqual(['dev-0001']); // 14:05: group east
      expect(await started(START + 4 * HOUR + 5 * MINUTE)).toEqual([]); // 16:05: pilots, dev-0001 is done
      expect(await started(START + 6 * HOUR + 5 * MINUTE)).toEqual([]); // 18:05: acme, dev-0000 has its own
      expect(await started(START + 14 * HOUR + 5 * MINUTE)).toEqual(['dev-0003']); // 02:05: the fallback
      expect(await started(START + 32 * HOUR + 5 * MINUTE)).toEqual(['dev-0000']); // 20:05 the next day
    });

    it('listings, removal, events, and a group’s windows go with the group', async () => {
      const { call, ok } = await fleetOf(db);
      await ok('PUT', '/api/v1/windows/groups/pilots', { windows: [window('16:00', '17:00')] });
      await ok('PUT', '/api/v1/windows/tags/customer/acme', { windows: [window('18:00', '19:00')] });
      await ok('PUT', '/api/v1/windows/tags/customer/zeta', { windows: [window('01:00', '02:00')] });
      const groups = await call('GET', '/api/v1/windows/groups');
      expect(groups.body).toMatchObject({ windows: [{ group: 'pilots' }], next: null });
      const page = await call('GET', '/api/v1/windows/tags?limit=1');
      expect(page.body).toMatchObject({
        windows: [{ key: 'customer', value: 'acme' }],
        next: 'customer=acme',
      });
      const rest = await call('GET', '/api/v1/windows/tags?limit=1&after=customer=acme');
      expect((rest.body.windows as Array<{ value: string }>).map((w) => w.value)).toEqual(['zeta']);
      expect((await call('GET', '/api/v1/windows/tags/customer/acme')).body).toMatchObject({
        windows: [{ start: '18:00', end: '19:00', timezone: 'device' }],
        updated_by: expect.any(String),
      });

      expect((await call('DELETE', '/api/v1/windows/tags/customer/zeta')).status).toBe(200);
      const again = await call('DELETE', '/api/v1/windows/tags/customer/zeta');
      expect(again.status).toBe(404);
      expect(again.body.error).toMatchObject({
        code: 'NOT_FOUND',
        message: 'tag customer=zeta has no windows',
      });
      expect((await call('GET', '/api/v1/devices/dev-0001/windows')).body.resolved).toMatchObject({
        source: 'group',
        from: ['pilots'],
      });

      expect((await call('DELETE', '/api/v1/groups/pilots')).status).toBe(200);
      expect((await call('GET', '/api/v1/windows/groups')).body.windows).toEqual([]);
      // With its group gone, dev-0001 takes its tag value's windows.
      expect((await call('GET', '/api/v1/devices/dev-0001/windows')).body.resolved).toMatchObject({
        source: 'tag',
        from: ['customer=acme'],
      });
      const events = await call('GET', '/api/v1/events?limit=100');
      const types = (events.body.events as Array<{ type: string }>).map((e) => e.type);
      expect(types).toEqual(
        expect.arrayContaining(['group.windows_set', 'tag.windows_set', 'tag.windows_removed']),
      );
    });

    it('refuses bad input with 4xx before writing, and scoped principals outright', async () => {
      const { call } = await fleetOf(db);
      const body = { windows: [window('01:00', '02:00')] };
      const bad = await call('PUT', '/api/v1/windows/groups/east', { windows: [window('25:00', '03:00')] });
      expect(bad.status).toBe(400);
      expect((bad.body.error as { message: string }).message).toMatch(/^windows\[0\]\.start: /);
      const missing = await call('PUT', '/api/v1/windows/groups/nowhere', body);
      expect(missing.status).toBe(404);
      expect(missing.body.error).toMatchObject({
        code: 'NOT_FOUND',
        message: expect.stringMatching(/^group nowhere does not exist/),
      });
      expect((await call('PUT', '/api/v1/windows/tags/bad%20key/x', body)).status).toBe(400);
      expect((await call('GET', '/api/v1/windows/groups')).body.windows).toEqual([]);
      expect((await call('GET', '/api/v1/windows/tags')).body.windows).toEqual([]);

      const token = async (role: string, scope?: string) =>
        (await call('POST', '/api/v1/tokens', { name: `t-${role}`, role, ...(scope ? { scope } : {}) })).body
          .token as string;
      const viewer = await token('viewer');
      const scoped = await token('operator', 'tag.customer = acme');
      expect((await call('PUT', '/api/v1/windows/tags/customer/acme', body, viewer)).status).toBe(403);
      const refused = await call('PUT', '/api/v1/windows/tags/customer/acme', body, scoped);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({
        code: 'FORBIDDEN',
        message: expect.stringMatching(/reaches beyond a scope/),
      });
      expect((await call('PUT', '/api/v1/windows/groups/east', body, scoped)).status).toBe(403);
      expect((await call('GET', '/api/v1/windows/tags', undefined, scoped)).status).toBe(403);
      expect((await call('PUT', '/api/v1/windows/groups/east', body)).status).toBe(200);
      expect((await call('GET', '/api/v1/windows/groups/east', undefined, viewer)).status).toBe(200);
      // The scoped operator sees what its own device takes, and where it comes from.
      expect(
        (await call('GET', '/api/v1/devices/dev-0001/windows', undefined, scoped)).body.resolved,
      ).toMatchObject({
        source: 'group',
        from: ['east'],
      });
    });
  });
});
