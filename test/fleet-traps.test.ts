/**
 * A larger fleet full of traps — semver ordering (2.10.0 > 2.2.0, prereleases), status thresholds to the
 * millisecond, time zones, tags with odd characters — imported over HTTP and counted through the API,
 * against counts computed here independently, by hand, in plain JavaScript.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';

const MIN = 60_000;
const DAY = 86_400_000;
const FIRMWARE = [
  '2.2.0',
  '2.10.0',
  '2.9.9',
  '3.0.0-rc.1',
  '3.0.0',
  '2.2.0-beta.2',
  '2.2.0-beta.11',
  'v2.1.0',
  'garbage',
  null,
];
const ZONES = ['America/New_York', 'America/Phoenix', 'America/Los_Angeles', 'Australia/Sydney', null];
const REGIONS = ['northeast', 'west', "o'hare", 'south east', null];
/** Silence (ms before now) chosen to sit on and around every status boundary. */
const SILENCE = [0, 10 * MIN, 10 * MIN + 1, 30 * DAY, 30 * DAY + 1, 2 * DAY, null];

interface Spec {
  id: string;
  firmware: string | null;
  zone: string | null;
  region: string | null;
  silence: number | null;
}

const fleet: Spec[] = Array.from({ length: 700 }, (_, i) => ({
  id: `trap-${String(i).padStart(4, '0')}`,
  firmware: FIRMWARE[i % FIRMWARE.length]!,
  zone: ZONES[Math.floor(i / 3) % ZONES.length]!,
  region: REGIONS[Math.floor(i / 7) % REGIONS.length]!,
  silence: SILENCE[Math.floor(i / 11) % SILENCE.length]!,
}));

/** Hand-written semver order for exactly the versions above (independent of the product's parser). */
const ORDER = ['2.1.0', '2.2.0-beta.2', '2.2.0-beta.11', '2.2.0', '2.9.9', '2.10.0', '3.0.0-rc.1', '3.0.0'];
const rank = (v: string | null) => (v === null ? -1 : ORDER.indexOf(v.replace(/^v/, '')));
const status = (s: Spec) =>
  s.silence === null
    ? 'unknown'
    : s.silence <= 10 * MIN
      ? 'online'
      : s.silence <= 30 * DAY
        ? 'offline'
        : 'abandoned';

let t: TestApp;
beforeAll(async () => {
  t = await testApp();
  const now = t.clock.now();
  const r = await t.app.inject({
    method: 'POST',
    url: '/api/v1/devices/import',
    headers: t.admin,
    payload: {
      devices: fleet.map((s) => ({
        id: s.id,
        firmware_version: s.firmware,
        timezone: s.zone,
        last_seen: s.silence === null ? null : new Date(now - s.silence).toISOString(),
        ...(s.region === null ? {} : { tags: { region: s.region } }),
      })),
    },
  });
  expect(r.statusCode, r.body).toBe(200);
});
afterAll(async () => {
  await t.close();
});

async function count(filter: string): Promise<number> {
  const r = await t.app.inject({
    method: 'GET',
    url: '/api/v1/devices/count',
    query: { filter },
    headers: t.admin,
  });
  expect(r.statusCode, `${filter}: ${r.body}`).toBe(200);
  return r.json().count;
}

describe('counts on a fleet of traps match an independent computation', () => {
  const cases: Array<[string, (s: Spec) => boolean]> = [
    ['firmware < 2.2.0', (s) => rank(s.firmware) >= 0 && rank(s.firmware) < rank('2.2.0')],
    ['firmware > 2.9.9', (s) => rank(s.firmware) > rank('2.9.9')],
    ['firmware >= 3.0.0-rc.1', (s) => rank(s.firmware) >= rank('3.0.0-rc.1')],
    ['firmware < 3.0.0', (s) => rank(s.firmware) >= 0 && rank(s.firmware) < rank('3.0.0')],
    ['firmware = 2.2.0', (s) => s.firmware === '2.2.0'],
    ['firmware != 2.2.0', (s) => s.firmware !== '2.2.0'],
    ['status = online', (s) => status(s) === 'online'],
    ['status = offline', (s) => status(s) === 'offline'],
    ['status = abandoned', (s) => status(s) === 'abandoned'],
    ['status = unknown', (s) => status(s) === 'unknown'],
    ['last_seen > 1d ago', (s) => s.silence !== null && s.silence < DAY],
    ['timezone = America/Phoenix', (s) => s.zone === 'America/Phoenix'],
    [`tag.region = "o'hare"`, (s) => s.region === "o'hare"],
    [
      'tag.region = "south east" or tag.region = west',
      (s) => s.region === 'south east' || s.region === 'west',
    ],
    ['tag.region != northeast', (s) => s.region !== 'northeast'],
    [
      'status = online and tag.region in (northeast, west) and firmware < 2.10.0',
      (s) =>
        status(s) === 'online' &&
        (s.region === 'northeast' || s.region === 'west') &&
        rank(s.firmware) >= 0 &&
        rank(s.firmware) < rank('2.10.0'),
    ],
    ['not (status = online or status = offline)', (s) => status(s) !== 'online' && status(s) !== 'offline'],
  ];
  for (const [filter, predicate] of cases) {
    it(filter, async () => {
      const expected = fleet.filter(predicate).length;
      expect(expected).toBeGreaterThan(0);
      expect(await count(filter)).toBe(expected);
    });
  }

  it('fleet stats agree with the same computation', async () => {
    const stats = (
      await t.app.inject({ method: 'GET', url: '/api/v1/fleet/stats', headers: t.admin })
    ).json();
    for (const s of ['online', 'offline', 'abandoned', 'unknown'] as const) {
      expect(stats.by_status[s], s).toBe(fleet.filter((d) => status(d) === s).length);
    }
    expect(stats.firmware.find((f: { version: string }) => f.version === '2.10.0').count).toBe(
      fleet.filter((d) => d.firmware === '2.10.0').length,
    );
  });
});
