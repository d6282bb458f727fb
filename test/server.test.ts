/** The operator and device APIs over HTTP (in-process inject) against a real SQLite file. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '../examples/pos-fleet.json'), 'utf8'));
const MIN = 60_000;

let t: TestApp;
beforeEach(async () => {
  t = await testApp();
});
afterEach(async () => {
  await t.close();
});

async function importFixture() {
  const r = await t.app.inject({
    method: 'POST',
    url: '/api/v1/devices/import',
    headers: t.admin,
    payload: fixture,
  });
  expect(r.statusCode).toBe(200);
  return r.json();
}

async function ids(filter: string): Promise<string[]> {
  const r = await t.app.inject({
    method: 'GET',
    url: '/api/v1/devices',
    query: { filter },
    headers: t.admin,
  });
  expect(r.statusCode, r.body).toBe(200);
  return r.json().devices.map((d: { id: string }) => d.id);
}

async function enrolledDevice(
  id: string,
  extra: Record<string, unknown> = {},
  tokenBody: Record<string, unknown> = { uses: 1 },
) {
  const token = await t.app.inject({
    method: 'POST',
    url: '/api/v1/enrollment-tokens',
    headers: t.admin,
    payload: tokenBody,
  });
  expect(token.statusCode).toBe(201);
  const r = await t.app.inject({
    method: 'POST',
    url: '/api/device/v1/enroll',
    payload: { enrollment_token: token.json().token, device_id: id, hardware_type: 'pos-x200', ...extra },
  });
  expect(r.statusCode, r.body).toBe(201);
  return { authorization: `Bearer ${r.json().credential}`, credential: r.json().credential as string };
}

function heartbeat(headers: Record<string, string>, payload: unknown) {
  return t.app.inject({
    method: 'POST',
    url: '/api/device/v1/heartbeat',
    headers,
    payload: payload as object,
  });
}

describe('the POS fixture', () => {
  it('imports with its timestamps shifted to now: 6 online, 3 offline, 1 unknown', async () => {
    expect(await importFixture()).toEqual({ created: 10, updated: 0 });
    const stats = (
      await t.app.inject({ method: 'GET', url: '/api/v1/fleet/stats', headers: t.admin })
    ).json();
    expect(stats.total).toBe(10);
    expect(stats.by_status).toEqual({ online: 6, offline: 3, unknown: 1, abandoned: 0, decommissioned: 0 });
    expect(stats.tags.region.northeast).toBe(3);
    expect(stats.firmware[0]).toEqual({ version: '2.3.0', count: 3 });
    expect(stats.silent).toEqual({ over_24h: 2, over_30d: 0 });
  });

  it('re-importing updates instead of duplicating', async () => {
    await importFixture();
    expect(await importFixture()).toEqual({ created: 0, updated: 10 });
  });

  it('filters: region northeast, firmware < 2.2.0, status', async () => {
    await importFixture();
    expect(await ids('tag.region=northeast')).toEqual(['pos-boston-001', 'pos-nyc-001', 'pos-nyc-002']);
    expect(await ids('firmware < 2.2.0')).toEqual([
      'pos-boston-001',
      'pos-chicago-001',
      'pos-denver-001',
      'pos-nyc-001',
      'pos-seattle-001',
    ]);
    expect(await ids('status = unknown')).toEqual(['pos-denver-001']);
    expect(await ids('status=online and tag.region in (northeast, west)')).toEqual([
      'pos-la-001',
      'pos-nyc-001',
      'pos-nyc-002',
    ]);
    expect(await ids('id = pos-nyc-*')).toEqual(['pos-nyc-001', 'pos-nyc-002']);
    expect(await ids('location = "New York, NY" and not firmware >= 2.3.0')).toEqual(['pos-nyc-001']);
  });

  it('counts matches without listing them', async () => {
    await importFixture();
    const r = await t.app.inject({
      method: 'GET',
      url: '/api/v1/devices/count',
      query: { filter: 'status=offline' },
      headers: t.admin,
    });
    expect(r.json()).toEqual({ count: 3 });
  });

  it('pages through the registry with a cursor, in any sort order', async () => {
    await importFixture();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: Record<string, string> = { limit: '3', sort: 'last_seen', order: 'desc' };
      if (cursor) query.cursor = cursor;
      const page = (
        await t.app.inject({ method: 'GET', url: '/api/v1/devices', query, headers: t.admin })
      ).json();
      seen.push(...page.devices.map((d: { id: string }) => d.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(10);
    expect(seen[0]).toBe('pos-phoenix-001');
    expect(seen.at(-1)).toBe('pos-denver-001');
  });
});

describe('the event stream', () => {
  it('streams events as they are stored, resumes after Last-Event-ID, and opens with a stream ticket instead of a header', async () => {
    const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const read = async (headers: Record<string, string>, query: string, until: (text: string) => boolean) => {
      const abort = new AbortController();
      const response = await fetch(`${base}/api/v1/events/stream?${query}`, {
        headers,
        signal: abort.signal,
      });
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = response.body!.getReader();
      let text = '';
      while (!until(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      abort.abort();
      return text;
    };
    // From the first event on (nothing is registered yet), so the import is seen whenever the stream opens.
    const { ticket } = (
      await t.app.inject({ method: 'POST', url: '/api/v1/events/stream-ticket', headers: t.admin })
    ).json();
    const streamed = read({}, `ticket=${ticket}&after=0&type=device.registered`, (text) =>
      /"device_id":"pos-la-001"[^\n]*\n\n/.test(text),
    );
    await importFixture();
    const text = await streamed;
    const frames = text.split('\n\n').filter((f) => f.startsWith('id: '));
    expect(frames).toHaveLength(10);
    expect(frames[0]).toMatch(/^id: \d+\nevent: device\.registered\ndata: \{.*"device_id":"pos-nyc-001"/);
    const third = Number(/^id: (\d+)/.exec(frames[2]!)![1]);
    const resumed = await read(
      { ...t.admin, 'last-event-id': String(third) },
      'type=device.registered',
      (x) => x.includes('pos-la-001'),
    );
    expect(resumed.split('\n\n').filter((f) => f.startsWith('id: '))).toHaveLength(7);
    const refused = await fetch(`${base}/api/v1/events/stream?ticket=wrong`);
    expect(refused.status).toBe(401);
  });
});

describe('fleet history', () => {
  it('records the counts by status every few minutes and answers them over a period', async () => {
    await importFixture();
    await t.sweeper.sweep();
    t.clock.advance(4 * MIN);
    await t.sweeper.sweep(); // under five minutes since the last snapshot: none recorded
    t.clock.advance(2 * MIN);
    await t.sweeper.sweep();
    const r = await t.app.inject({
      method: 'GET',
      url: '/api/v1/fleet/history',
      query: { since: '1h' },
      headers: t.admin,
    });
    const snapshots = r.json().snapshots;
    expect(snapshots).toHaveLength(2);
    expect(snapshots[0].by_status).toEqual({
      online: 6,
      offline: 3,
      unknown: 1,
      abandoned: 0,
      decommissioned: 0,
    });
    // Six minutes later the terminals last heard from 4–5 minutes before the import have gone offline.
    expect(snapshots[1].by_status.online).toBeLessThan(6);
    expect(Date.parse(snapshots[1].at) - Date.parse(snapshots[0].at)).toBe(6 * MIN);
    const bad = await t.app.inject({
      method: 'GET',
      url: '/api/v1/fleet/history',
      query: { since: 'forever' },
      headers: t.admin,
    });
    expect(bad.statusCode).toBe(400);
  });
});

describe('enrollment and heartbeats', () => {
  it('a device enrolls, heartbeats and comes online, with an event for the transition', async () => {
    const device = await enrolledDevice('truck-1', { firmware_version: '1.0.0', timezone: 'America/Denver' });
    const r = await heartbeat(device, {
      device_id: 'truck-1',
      firmware_version: '1.0.1',
      timestamp: '2024-10-20T14:23:00Z',
      location: { lat: 47.6062, lon: -122.3321 },
      battery: 87,
      signal_strength: -65,
      metrics: { cpu: 12.5 },
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({ pending_updates: [], next_heartbeat: 300 });
    const d = (
      await t.app.inject({ method: 'GET', url: '/api/v1/devices/truck-1', headers: t.admin })
    ).json();
    expect(d).toMatchObject({
      status: 'online',
      firmware_version: '1.0.1',
      enrolled: true,
      telemetry: { lat: 47.6062, lon: -122.3321, battery: 87, signal_strength: -65, metrics: { cpu: 12.5 } },
    });
    expect(d.last_seen).toBe(new Date(t.clock.now()).toISOString());
    const events = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/events',
        query: { device: 'truck-1' },
        headers: t.admin,
      })
    ).json().events;
    expect(events.map((e: { type: string }) => e.type)).toEqual([
      'device.enrolled',
      'device.status',
      'device.firmware_changed',
    ]);
    expect(events[1].data).toEqual({ from: 'unknown', to: 'online' });
  });

  it('a silent device becomes offline, then abandoned, without any request arriving', async () => {
    const device = await enrolledDevice('truck-2');
    await heartbeat(device, { device_id: 'truck-2' });
    t.clock.advance(10 * MIN);
    expect(await t.sweeper.sweep()).toEqual([]);
    t.clock.advance(1);
    expect(await t.sweeper.sweep()).toEqual([{ deviceId: 'truck-2', from: 'online', to: 'offline' }]);
    t.clock.advance(30 * 86_400_000);
    expect(await t.sweeper.sweep()).toEqual([{ deviceId: 'truck-2', from: 'offline', to: 'abandoned' }]);
    const events = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/events',
        query: { device: 'truck-2', type: 'device.status' },
        headers: t.admin,
      })
    ).json().events;
    expect(events.map((e: { data: { to: string } }) => e.data.to)).toEqual([
      'online',
      'offline',
      'abandoned',
    ]);
  });

  it('an imported device claims its registry entry by enrolling, keeping its facts', async () => {
    await importFixture();
    const device = await enrolledDevice(
      'pos-denver-001',
      { hardware_type: 'something-else' },
      { uses: 1, claim: 'tag.region = mountain' },
    );
    expect((await heartbeat(device, { device_id: 'pos-denver-001' })).statusCode).toBe(200);
    const d = (
      await t.app.inject({ method: 'GET', url: '/api/v1/devices/pos-denver-001', headers: t.admin })
    ).json();
    expect(d).toMatchObject({ status: 'online', hardware_type: 'pos-x100', tags: { region: 'mountain' } });
  });

  it('an enrollment token is used up, and an enrolled device cannot enroll again', async () => {
    const token = (
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/enrollment-tokens',
        headers: t.admin,
        payload: { uses: 1 },
      })
    ).json().token;
    const enroll = (id: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/device/v1/enroll',
        payload: { enrollment_token: token, device_id: id },
      });
    expect((await enroll('d1')).statusCode).toBe(201);
    const again = await enroll('d2');
    expect(again.statusCode).toBe(401);
    expect(again.json().error.code).toBe('ENROLLMENT_INVALID');
    const other = await enrolledDevice('d3');
    expect(other.credential.startsWith('d3.')).toBe(true);
    const twice = await t.app.inject({
      method: 'POST',
      url: '/api/v1/enrollment-tokens',
      headers: t.admin,
      payload: {},
    });
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/device/v1/enroll',
      payload: { enrollment_token: twice.json().token, device_id: 'd3' },
    });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('DEVICE_EXISTS');
  });

  it('an expired enrollment token is refused', async () => {
    const token = (
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/enrollment-tokens',
        headers: t.admin,
        payload: { expires_in: '1h' },
      })
    ).json().token;
    t.clock.advance(3_600_001);
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/device/v1/enroll',
      payload: { enrollment_token: token, device_id: 'late' },
    });
    expect(r.statusCode).toBe(401);
  });

  it('decommissioning revokes the credential and keeps the device and its history', async () => {
    const device = await enrolledDevice('old-1');
    await heartbeat(device, { device_id: 'old-1' });
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/old-1/decommission',
      headers: t.admin,
    });
    expect(r.json().status).toBe('decommissioned');
    expect((await heartbeat(device, { device_id: 'old-1' })).statusCode).toBe(401);
    expect(await ids('status = decommissioned')).toEqual(['old-1']);
    const events = (
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/events',
        query: { device: 'old-1' },
        headers: t.admin,
      })
    ).json().events;
    expect(events.at(-1)).toMatchObject({
      type: 'device.status',
      actor: 'api:admin',
      data: { to: 'decommissioned' },
    });
    const second = await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/old-1/decommission',
      headers: t.admin,
    });
    expect(second.statusCode).toBe(409);
  });

  it('an operator-issued credential replaces the old one', async () => {
    await importFixture();
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/pos-la-001/credential',
      headers: t.admin,
    });
    expect(r.statusCode).toBe(201);
    const ok = await heartbeat(
      { authorization: `Bearer ${r.json().credential}` },
      { device_id: 'pos-la-001' },
    );
    expect(ok.statusCode).toBe(200);
  });
});

describe('bad input gets a 4xx JSON error and changes nothing', () => {
  const expectError = (
    r: { statusCode: number; json(): { error: { code: string; message: string } } },
    status: number,
    code: string,
  ) => {
    expect(r.statusCode).toBe(status);
    expect(r.json().error.code).toBe(code);
    expect(r.json().error.message.length).toBeGreaterThan(0);
  };

  it('heartbeat without, with a wrong, or with another device`s credential', async () => {
    const device = await enrolledDevice('hb-1');
    await enrolledDevice('hb-2');
    expectError(await heartbeat({}, { device_id: 'hb-1' }), 401, 'UNAUTHENTICATED');
    expectError(
      await heartbeat({ authorization: 'Bearer nonsense' }, { device_id: 'hb-1' }),
      401,
      'UNAUTHENTICATED',
    );
    const forged = `${device.credential.slice(0, -4)}AAAA`;
    expectError(
      await heartbeat({ authorization: `Bearer ${forged}` }, { device_id: 'hb-1' }),
      401,
      'UNAUTHENTICATED',
    );
    const other = device.credential.replace(/^hb-1\./, 'hb-2.');
    expectError(
      await heartbeat({ authorization: `Bearer ${other}` }, { device_id: 'hb-2' }),
      401,
      'UNAUTHENTICATED',
    );
    const r = await heartbeat(device, { device_id: 'hb-2' });
    expectError(r, 403, 'FORBIDDEN');
    const d = (await t.app.inject({ method: 'GET', url: '/api/v1/devices/hb-2', headers: t.admin })).json();
    expect(d.status).toBe('unknown');
  });

  it('heartbeat with malformed JSON, wrong types, unknown fields or an oversize body', async () => {
    const device = await enrolledDevice('hb-3');
    const raw = (payload: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/device/v1/heartbeat',
        headers: { ...device, 'content-type': 'application/json' },
        payload,
      });
    expectError(await raw('{"device_id": "hb-3",'), 400, 'MALFORMED_JSON');
    const wrongType = await heartbeat(device, { device_id: 'hb-3', battery: 'high' });
    expectError(wrongType, 400, 'VALIDATION');
    expect(wrongType.json().error.message).toMatch(/battery/);
    expectError(await heartbeat(device, { device_id: 'hb-3', battery: '87' }), 400, 'VALIDATION');
    expectError(await heartbeat(device, { device_id: 'hb-3', battery: 101 }), 400, 'VALIDATION');
    expectError(
      await heartbeat(device, { device_id: 'hb-3', location: { lat: 91, lon: 0 } }),
      400,
      'VALIDATION',
    );
    const unknown = await heartbeat(device, { device_id: 'hb-3', status: 'online' });
    expectError(unknown, 400, 'VALIDATION');
    expect(unknown.json().error.message).toMatch(/unknown field "status"/);
    expectError(await heartbeat(device, {}), 400, 'VALIDATION');
    const poisoned = await raw('{"device_id": "hb-3", "__proto__": {"admin": true}}');
    expectError(poisoned, 400, 'VALIDATION');
    expect(poisoned.json().error.message).toMatch(/unknown field "__proto__"/);
    expectError(
      await raw(JSON.stringify({ device_id: 'hb-3', timestamp: 'x'.repeat(2 * 1024 * 1024) })),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    const text = await t.app.inject({
      method: 'POST',
      url: '/api/device/v1/heartbeat',
      headers: { ...device, 'content-type': 'application/xml' },
      payload: '<hello/>',
    });
    expectError(text, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const d = (await t.app.inject({ method: 'GET', url: '/api/v1/devices/hb-3', headers: t.admin })).json();
    expect(d.status).toBe('unknown');
  });

  it('operator API without a token, or with a wrong one', async () => {
    expectError(await t.app.inject({ method: 'GET', url: '/api/v1/devices' }), 401, 'UNAUTHENTICATED');
    expectError(
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/devices',
        headers: { authorization: 'Bearer fld_admin_x' },
      }),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('filter errors name the column and what was expected', async () => {
    const r = await t.app.inject({
      method: 'GET',
      url: '/api/v1/devices',
      query: { filter: 'status=online and firmware <' },
      headers: t.admin,
    });
    expectError(r, 400, 'FILTER_SYNTAX');
    expect(r.json().error.message).toMatch(/column 29: expected a value after .<., found end of input/);
    expectError(
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/devices',
        query: { filter: 'colour = red' },
        headers: t.admin,
      }),
      400,
      'FILTER_SYNTAX',
    );
  });

  it('injection attempts inside filter strings and tag values find nothing and harm nothing', async () => {
    await importFixture();
    expect(await ids(`tag.region = "northeast' or '1'='1"`)).toEqual([]);
    expect(await ids(`name = "x'; drop table devices; --"`)).toEqual([]);
    expect(await ids(`id = "%"`)).toEqual([]);
    expect(await ids(`id = "pos_nyc_001"`)).toEqual([]);
    const tagged = {
      devices: [{ id: 'evil-1', tags: { region: "'); delete from devices; --" } }],
    };
    expect(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/v1/devices/import',
          headers: t.admin,
          payload: tagged,
        })
      ).statusCode,
    ).toBe(200);
    expect(await ids(`tag.region = "'); delete from devices; --"`)).toEqual(['evil-1']);
    expect((await ids('')).length).toBe(11);
  });

  it('import errors name the field and import nothing', async () => {
    const bad = { devices: [{ id: 'ok-1' }, { id: 'bad-1', timezone: 'Atlantis/Capital' }] };
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/import',
      headers: t.admin,
      payload: bad,
    });
    expectError(r, 400, 'VALIDATION');
    expect(r.json().error.message).toMatch(/devices\[1\]\.timezone/);
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/import',
      headers: t.admin,
      payload: { devices: [{ id: 'x', tags: { region: 5 } }] },
    });
    expectError(wrong, 400, 'VALIDATION');
    expect(await ids('')).toEqual([]);
  });

  it('unknown device, unknown route, bad cursor, bad limit', async () => {
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/devices/nope', headers: t.admin }),
      404,
      'DEVICE_NOT_FOUND',
    );
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/nothing', headers: t.admin }),
      404,
      'NOT_FOUND',
    );
    expectError(
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/devices',
        query: { cursor: 'garbage' },
        headers: t.admin,
      }),
      400,
      'BAD_CURSOR',
    );
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/devices', query: { limit: '0' }, headers: t.admin }),
      400,
      'VALIDATION',
    );
  });
});

describe('OpenAPI', () => {
  it('documents the operator and device APIs at /docs', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/device/v1/heartbeat',
        '/api/v1/devices',
        '/api/v1/fleet/stats',
        '/api/v1/events',
      ]),
    );
    expect((await t.app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
  });
});
