/** `fleetd demo pos`: each of seed 001's scenarios ends as the seed tells it, device by device. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { localDateTime } from '../src/core/rollout/zone.js';
import {
  POS_SCENARIOS,
  type PosFleetFile,
  runPosScenario,
  type ScenarioAccount,
} from '../src/sim/pos-demo.js';

const FLEET = JSON.parse(
  readFileSync(new URL('../examples/pos-fleet.json', import.meta.url), 'utf8'),
) as PosFleetFile;
const START = Date.parse(FLEET.now);
const HOUR = 3_600_000;
const ONLINE = [
  'pos-atlanta-001',
  'pos-chicago-001',
  'pos-la-001',
  'pos-nyc-001',
  'pos-nyc-002',
  'pos-phoenix-001',
];

const run = (i: number) => runPosScenario(FLEET, POS_SCENARIOS[i]!);
const ids = (a: ScenarioAccount, outcome: string) =>
  a.devices
    .filter((d) => d.outcome === outcome)
    .map((d) => d.deviceId)
    .sort();
const device = (a: ScenarioAccount, id: string) => a.devices.find((d) => d.deviceId === id)!;
/** Each updated terminal started at 02:00 on its own wall clock (it was online then) or inside 02:00–04:00. */
const localStart = (a: ScenarioAccount, id: string) => {
  const d = device(a, id);
  const t = localDateTime(d.timezone, d.startedAt!);
  return `${String(t.hour).padStart(2, '0')}:${String(t.minute).padStart(2, '0')}`;
};

describe('fleetd demo pos', () => {
  it('1. immediate: the 6 online terminals now, the 3 offline and the never-seen one left out', async () => {
    const a = await run(0);
    expect(ids(a, 'updated')).toEqual(ONLINE);
    expect(ids(a, 'skipped')).toEqual([
      'pos-boston-001',
      'pos-denver-001',
      'pos-miami-001',
      'pos-seattle-001',
    ]);
    for (const id of ONLINE) expect(device(a, id).startedAt).toBe(START);
    expect(a.rolloutState).toBe('completed');
  }, 60_000);

  it('2. window: every terminal starts at 02:00 in its own zone; late ones take their next window', async () => {
    const a = await run(1);
    for (const id of [...ONLINE, 'pos-boston-001', 'pos-miami-001'])
      expect({ id, at: localStart(a, id) }).toEqual({ id, at: '02:00' });
    // 02:00 is 06:00Z in New York (EDT), 07:00Z in Chicago, 09:00Z in Phoenix (MST, no DST) and Los Angeles (PDT).
    expect(new Date(device(a, 'pos-nyc-001').startedAt!).toISOString()).toBe('2024-10-21T06:00:00.000Z');
    expect(new Date(device(a, 'pos-chicago-001').startedAt!).toISOString()).toBe('2024-10-21T07:00:00.000Z');
    expect(new Date(device(a, 'pos-phoenix-001').startedAt!).toISOString()).toBe('2024-10-21T09:00:00.000Z');
    // Miami came back at 06:25 local, after its window: it waited for the next night.
    expect(new Date(device(a, 'pos-miami-001').startedAt!).toISOString()).toBe('2024-10-22T06:00:00.000Z');
    // Seattle came back at 03:25 local, inside its window.
    expect(localStart(a, 'pos-seattle-001')).toBe('03:30');
    expect(device(a, 'pos-denver-001').outcome).toBe('waiting');
  }, 60_000);

  it('3. progressive: 1 canary, then 4 more after 24 h at 95%, then the rest after 12 h more', async () => {
    const a = await run(2);
    const started = a.devices.filter((d) => d.startedAt !== null).map((d) => d.startedAt! - START);
    expect(started.filter((t) => t < 24 * HOUR)).toHaveLength(1);
    expect(started.filter((t) => t >= 24 * HOUR && t < 36 * HOUR)).toHaveLength(4);
    expect(started.filter((t) => t >= 36 * HOUR)).toHaveLength(4); // Denver never connects
    expect(ONLINE).toContain(a.devices.find((d) => d.startedAt === START)!.deviceId); // an online canary
    expect(ids(a, 'updated')).toHaveLength(9);
  }, 60_000);

  it('3. progressive with a failing canary: halted and rolled back, nothing else touched', async () => {
    const a = await run(3);
    // Seeds 000 and 001: a failed gate means halt and roll back (the default for progressive rollouts).
    expect(a.rolloutState).toBe('rolled_back');
    expect(a.reason).toBe('canary: success rate can no longer reach 95% (1 of 1 failed)');
    expect(ids(a, 'failed')).toHaveLength(1);
    expect(ids(a, 'updated')).toEqual([]);
  }, 60_000);

  it('4. on-connect: the 3 offline terminals, each when it connects', async () => {
    const a = await run(4);
    expect(ids(a, 'updated')).toEqual(['pos-boston-001', 'pos-miami-001', 'pos-seattle-001']);
    // At its first check-in after coming back (terminals check in every quarter hour).
    for (const [id, hours] of [
      ['pos-boston-001', 6],
      ['pos-miami-001', 20],
      ['pos-seattle-001', 44],
    ] as const) {
      const after = device(a, id).startedAt! - (START + hours * HOUR);
      expect({ id, after }).toEqual({ id, after: expect.any(Number) });
      expect(after >= 0 && after < 15 * 60_000).toBe(true);
    }
  }, 60_000);

  it('5. region: exactly the 3 northeast terminals', async () => {
    const a = await run(5);
    expect(ids(a, 'updated')).toEqual(['pos-boston-001', 'pos-nyc-001', 'pos-nyc-002']);
    expect(ids(a, 'not targeted')).toHaveLength(7);
  }, 60_000);

  it('6. firmware < 2.2.0: exactly the 5 terminals on 2.0.x and 2.1.x, in their night window', async () => {
    const a = await run(6);
    expect(
      a.devices
        .filter((d) => d.outcome !== 'not targeted')
        .map((d) => d.from)
        .sort(),
    ).toEqual(['2.0.0', '2.0.5', '2.1.0', '2.1.1', '2.1.3']);
    for (const id of ids(a, 'updated'))
      expect(localStart(a, id) >= '02:00' && localStart(a, id) < '04:00').toBe(true);
  }, 60_000);
});
