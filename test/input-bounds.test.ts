/**
 * Input bounds at the HTTP edge, on both databases: absurd durations, unbounded arrays, numbers beyond their
 * column and NUL characters are refused with 400 before anything is written, so nothing unreadable is ever
 * stored and no single request stalls the server.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend, testRelease } from './support/stores.js';

const START = Date.parse('2026-11-22T12:00:00Z');

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

forEachBackend((backend) => {
  let t: TestApp;
  let store: SqlStore;
  let credential: string;

  const call = async (
    method: 'GET' | 'POST',
    url: string,
    payload?: unknown,
    headers = {},
  ): Promise<Answer> => {
    const res = await t.app.inject({
      method,
      url,
      headers: { ...t.admin, ...headers },
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
    return { status: res.statusCode, body: res.body ? res.json() : {} };
  };
  const refused = (a: Answer, pattern?: RegExp) => {
    expect(a.status, JSON.stringify(a.body)).toBe(400);
    expect(a.body.error?.code).toBe('VALIDATION');
    if (pattern) expect(a.body.error?.message).toMatch(pattern);
  };
  const spec = (extra: Record<string, unknown> = {}) => ({
    name: 'bounds',
    release: 'fw@1.0.0',
    filter: '',
    strategy: 'immediate',
    ...extra,
  });
  const rolloutCount = async () => (await store.rollouts.list({ limit: 500 })).length;

  beforeEach(async () => {
    store = await backend.open();
    t = await testApp(START, { store });
    await store.releases.create(testRelease('rel_1', '1.0.0', START), 'test');
    const token = await call('POST', '/api/v1/enrollment-tokens', {});
    expect(token.status).toBe(201);
    const enrolled = await call('POST', '/api/device/v1/enroll', {
      enrollment_token: token.body.token,
      device_id: 'dev-1',
      hardware_type: 'hw-a',
      firmware_version: '0.9.0',
    });
    expect(enrolled.status).toBe(201);
    credential = String(enrolled.body.credential);
  });
  afterEach(async () => {
    await t.close();
  });

  describe('durations', () => {
    for (const [field, extra] of [
      ['timeout', { timeout: '99999999999999999999w' }],
      ['timeout', { timeout: '31d' }],
      ['retry.max_backoff', { retry: { max_backoff: '99999999999999999999w' } }],
      ['retry.backoff', { retry: { backoff: '8d', max_backoff: '8d' } }],
      [
        'phases[0].wait',
        { strategy: 'progressive', phases: [{ percentage: 10, wait: '20000000w' }, { percentage: 100 }] },
      ],
      [
        'phases[0].wait',
        { strategy: 'progressive', phases: [{ percentage: 10, wait: '91d' }, { percentage: 100 }] },
      ],
    ] as const) {
      it(`a rollout with ${JSON.stringify(extra)} is refused and nothing is stored`, async () => {
        for (const url of ['/api/v1/rollouts?dry_run=true', '/api/v1/rollouts']) {
          refused(await call('POST', url, spec(extra)), new RegExp(`^${field.replace(/[[\].]/g, '\\$&')}: `));
        }
        expect(await rolloutCount()).toBe(0);
        const list = await call('GET', '/api/v1/rollouts');
        expect(list.status).toBe(200);
        const hb = await call(
          'POST',
          '/api/device/v1/heartbeat',
          { device_id: 'dev-1' },
          { authorization: `Bearer ${credential}` },
        );
        expect(hb.status).toBe(200);
      });
    }

    it('durations at their upper bounds are accepted, stored and read back', async () => {
      const created = await call(
        'POST',
        '/api/v1/rollouts',
        spec({
          strategy: 'progressive',
          phases: [{ percentage: 10, wait: '90d' }, { percentage: 100 }],
          timeout: '30d',
          retry: { backoff: '7d', max_backoff: '7d' },
        }),
      );
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const shown = await call('GET', `/api/v1/rollouts/${String(created.body.id)}`);
      expect(shown.status).toBe(200);
      expect((await call('GET', '/api/v1/rollouts')).status).toBe(200);
    });

    it('an enrollment token expiring in 15000000w is refused and not created', async () => {
      const before = await call('GET', '/api/v1/events?type=enrollment');
      refused(await call('POST', '/api/v1/enrollment-tokens', { expires_in: '15000000w' }), /^expires_in: /);
      refused(await call('POST', '/api/v1/enrollment-tokens', { expires_in: '366d' }), /^expires_in: /);
      const after = await call('GET', '/api/v1/events?type=enrollment');
      expect(after.body.events).toEqual(before.body.events);
      expect((await call('POST', '/api/v1/enrollment-tokens', { expires_in: '365d' })).status).toBe(201);
    });

    it('fleet history further back than a year is refused', async () => {
      refused(await call('GET', '/api/v1/fleet/history?since=999999999999999w'), /since/);
      expect((await call('GET', '/api/v1/fleet/history?since=365d')).status).toBe(200);
    });
  });

  describe('numbers beyond their column', () => {
    for (const url of [
      '/api/v1/rollouts?limit=1e400',
      '/api/v1/events?after=Infinity',
      '/api/v1/events?after=9223372036854775808',
      '/api/v1/events?after=1e300',
      '/api/v1/events/recent?before=1e20',
      '/api/v1/events/stream?after=1e300',
      '/api/v1/rollouts/ro_x/updates?phase=1e300',
    ]) {
      it(`GET ${url} is a 400`, async () => {
        refused(await call('GET', url));
      });
    }

    it('an enrollment token with 2^53 uses is refused; 2^31-1 is accepted', async () => {
      refused(await call('POST', '/api/v1/enrollment-tokens', { uses: 2 ** 53 }), /uses/);
      refused(await call('POST', '/api/v1/enrollment-tokens', { uses: 2 ** 31 }), /uses/);
      expect((await call('POST', '/api/v1/enrollment-tokens', { uses: 2 ** 31 - 1 })).status).toBe(201);
    });

    it('a status report whose seq does not fit an int4 is refused at the schema', async () => {
      for (const seq of [3_000_000_000, 1e300]) {
        const res = await call(
          'POST',
          '/api/device/v1/updates/upd_x/status',
          { seq, state: 'downloading' },
          { authorization: `Bearer ${credential}` },
        );
        refused(res, /seq/);
      }
    });
  });

  describe('NUL characters', () => {
    it('a heartbeat with a NUL in firmware_version is a 400 and stores nothing', async () => {
      const res = await call(
        'POST',
        '/api/device/v1/heartbeat',
        { device_id: 'dev-1', firmware_version: '1.0\u0000evil' },
        { authorization: `Bearer ${credential}` },
      );
      refused(res, /NUL/);
      expect(
        (await store.getDevice('dev-1', { now: START, thresholds: DEFAULT_THRESHOLDS }))?.firmwareVersion,
      ).toBe('0.9.0');
    });

    it('a NUL anywhere in a body is refused, nested or in a key; an escaped backslash before u0000 is not a NUL', async () => {
      refused(await call('POST', '/api/v1/enrollment-tokens', { tags: { site: 'a\u0000b' } }), /NUL/);
      refused(
        await call(
          'POST',
          '/api/device/v1/heartbeat',
          { device_id: 'dev-1', metrics: { 'cpu\u0000': 1 } },
          { authorization: `Bearer ${credential}` },
        ),
        /^body\.metrics\.cpu. must not contain a NUL character .* in its name$/,
      );
      refused(await call('POST', '/api/v1/rollouts', spec({ name: 'x\u0000y' })), /NUL/);
      const literal = await call('POST', '/api/v1/enrollment-tokens', { tags: { site: 'a\\u0000b' } });
      expect(literal.status).toBe(201);
      expect(literal.body.tags).toEqual({ site: 'a\\u0000b' });
    });

    it('a NUL in a device id in the path is a 400 (the id pattern refuses it)', async () => {
      refused(await call('GET', '/api/v1/devices/dev%00x'));
    });

    for (const url of [
      '/api/v1/devices?filter=name%3Dx%00',
      '/api/v1/events?type=device%00',
      '/api/v1/rollouts/ro%00/updates',
    ]) {
      it(`GET ${url} is a 400`, async () => {
        refused(await call('GET', url), /NUL/);
      });
    }
  });

  describe('arrays and strings', () => {
    it('a dry run with 20,000 window days is refused at once', async () => {
      const days = Array.from(
        { length: 20_000 },
        (_, i) => ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'][i % 7],
      );
      const started = performance.now();
      const res = await call(
        'POST',
        '/api/v1/rollouts?dry_run=true',
        spec({ strategy: 'scheduled', window: { start: '02:00', end: '04:00', days } }),
      );
      refused(res, /^window\.days: /);
      expect(performance.now() - started).toBeLessThan(1_000);
    });

    it('a repeated window day is refused', async () => {
      refused(
        await call(
          'POST',
          '/api/v1/rollouts?dry_run=true',
          spec({ strategy: 'scheduled', window: { start: '02:00', end: '04:00', days: ['mon', 'mon'] } }),
        ),
        /^window\.days: must not repeat a day/,
      );
    });

    it('more than 64 tags, or a tag key outside the key pattern, is refused', async () => {
      const tags = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
      refused(await call('POST', '/api/v1/enrollment-tokens', { tags }));
      refused(await call('POST', '/api/v1/enrollment-tokens', { tags: { 'bad key': 'v' } }));
    });

    it('a heartbeat metric name longer than 64 characters is refused', async () => {
      const res = await call(
        'POST',
        '/api/device/v1/heartbeat',
        { device_id: 'dev-1', metrics: { ['m'.repeat(65)]: 1 } },
        { authorization: `Bearer ${credential}` },
      );
      refused(res);
    });
  });

  describe('enrollment time zones', () => {
    for (const timezone of ['Mars/Base', '']) {
      it(`enrolling with timezone ${JSON.stringify(timezone)} is refused as import refuses it`, async () => {
        const token = await call('POST', '/api/v1/enrollment-tokens', {});
        const res = await call('POST', '/api/device/v1/enroll', {
          enrollment_token: token.body.token,
          device_id: 'dev-tz',
          timezone,
        });
        refused(res, /^timezone: ".*" is not an IANA time zone/);
        expect(
          await store.getDevice('dev-tz', { now: START, thresholds: DEFAULT_THRESHOLDS }),
        ).toBeUndefined();
      });
    }
  });

  it('issuing a credential for an empty device id is a 400 in the error shape', async () => {
    refused(await call('POST', '/api/v1/devices//credential'));
  });
});
