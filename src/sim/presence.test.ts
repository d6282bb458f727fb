import { describe, expect, it } from 'vitest';
import { FleetModel } from './fleet-model.js';
import { Presence } from './presence.js';
import { PROFILE_NAMES } from './profiles.js';
import { parseScenario } from './scenario.js';

const START = Date.parse('2026-03-02T00:00:00Z');
const MINUTE = 60_000;

function fleet(profile: unknown) {
  return new FleetModel(
    parseScenario({
      start: '2026-03-02T00:00:00Z',
      duration: '7d',
      fleet: [
        {
          count: 40,
          id_prefix: 'd-',
          profile,
          hardware_type: 'x',
          firmware: { '1.0.0': 1 },
          timezones: { 'America/New_York': 0.5, 'Australia/Lord_Howe': 0.25, UTC: 0.25 },
        },
      ],
    }),
  );
}

const profiles: unknown[] = [
  ...PROFILE_NAMES.filter((p) => p !== 'custom'),
  { schedule: [{ days: ['mon', 'wed'], on: '22:00', off: '03:00' }], jitter: '20m' },
];

describe('presence (sessions cached per device)', () => {
  for (const profile of profiles) {
    it(`agrees with the profile at every instant asked, walking forward (${JSON.stringify(profile)})`, () => {
      const model = fleet(profile);
      const presence = new Presence(model);
      for (let i = 0; i < model.size; i++) {
        const c = model.connectivity(i);
        // Irregular steps, as a simulation asks: sometimes seconds apart, sometimes hours.
        for (
          let t = START, n = 0;
          t < START + 9 * 86_400_000;
          t += ((n * 7919) % 97) * 3 * MINUTE + 1000, n++
        ) {
          expect(presence.isOnline(i, t)).toBe(c.isOnline(t));
          if (!c.isOnline(t)) expect(presence.nextOnline(i, t)).toBe(c.nextOnline(t));
          else {
            // Sessions are followed three weeks at a time: an end may come early, and the device is then
            // found still online there (the simulation carries on), never late.
            const end = c.sessionAt(t)![1];
            const seen = presence.sessionEnd(i, t);
            expect(seen).toBeGreaterThan(t);
            expect(seen).toBeLessThanOrEqual(end);
            if (seen < end) expect(c.isOnline(seen)).toBe(true);
          }
        }
      }
    });
  }

  it('a network drop keeps the device offline until it ends', () => {
    const model = fleet('always');
    const presence = new Presence(model);
    presence.drop(3, START + 20 * MINUTE);
    expect(presence.isOnline(3, START + 5 * MINUTE)).toBe(false);
    expect(presence.nextOnline(3, START + 5 * MINUTE)).toBe(START + 20 * MINUTE);
    expect(presence.isOnline(3, START + 20 * MINUTE)).toBe(true);
  });
});
