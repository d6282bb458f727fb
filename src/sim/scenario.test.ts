import { describe, expect, it } from 'vitest';
import { parseScenario } from './scenario.js';

const base = () => ({
  start: '2026-03-02T00:00:00Z',
  duration: '2d',
  fleet: [{ count: 10, id_prefix: 'd-', hardware_type: 'hw', firmware: { '1.0.0': 1 } }],
  rollouts: [{ at: '1h', spec: { name: 'r', release: 'fw@2.0.0', filter: '', strategy: 'immediate' } }],
});

const error = (patch: (s: ReturnType<typeof base> & Record<string, unknown>) => void) => {
  const s = base() as ReturnType<typeof base> & Record<string, unknown>;
  patch(s);
  try {
    parseScenario(s);
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
};

describe('scenario parsing', () => {
  it('fills defaults', () => {
    const s = parseScenario(base());
    expect(s.fleet[0]!.profile).toEqual({ kind: 'always' });
    expect(s.rollouts[0]!.at).toBe(Date.parse('2026-03-02T01:00:00Z'));
    expect(s.simulation.layer).toBe('store');
  });

  it('names the field of each error', () => {
    expect(error((s) => (s.duration = '2 days'))).toMatch(/^duration: must be a duration/);
    expect(error((s) => ((s.fleet[0] as Record<string, unknown>).count = -1))).toMatch(/^fleet\[0\]\.count:/);
    expect(error((s) => ((s.fleet[0] as Record<string, unknown>).timezones = { 'Mars/Base': 1 }))).toMatch(
      /^fleet\[0\]\.timezones\.Mars\/Base: "Mars\/Base" is not an IANA time zone/,
    );
    expect(error((s) => ((s.fleet[0] as Record<string, unknown>).profile = 'boat'))).toMatch(
      /^fleet\[0\]\.profile: must be one of/,
    );
    expect(error((s) => ((s.fleet[0] as Record<string, unknown>).firmware = { banana: 1 }))).toMatch(
      /^fleet\[0\]\.firmware\.banana:/,
    );
    expect(error((s) => ((s.fleet[0] as Record<string, unknown>).install_seconds = { gamma: 3 }))).toMatch(
      /^fleet\[0\]\.install_seconds\.gamma: is not a known distribution/,
    );
    expect(error((s) => ((s.fleet[0] as Record<string, unknown>).failure_rate = 2))).toMatch(
      /^fleet\[0\]\.failure_rate: must be between 0 and 1/,
    );
    expect(error((s) => ((s.rollouts[0]!.spec as Record<string, unknown>).strategy = 'yolo'))).toMatch(
      /^rollouts\[0\]\.spec\.strategy: must be one of/,
    );
    expect(
      error((s) => ((s.rollouts[0]!.spec as Record<string, unknown>).phases = [{ percentage: 50 }])),
    ).toMatch(/^rollouts\[0\]\.spec\.phases: only the progressive strategy/);
    expect(error((s) => (s.rollouts[0]!.at = '3d'))).toMatch(
      /^rollouts\[0\]\.at: must fall within the scenario/,
    );
    expect(error((s) => (s.actions = [{ at: '2h', rollout: 'nope', action: 'pause' }]))).toMatch(
      /^actions\[0\]\.rollout: "nope" is not the name/,
    );
    expect(error((s) => (s.actions = [{ at: '2h', rollout: 'r', action: 'explode' }]))).toMatch(
      /^actions\[0\]\.action: must be one of/,
    );
    expect(error((s) => (s.faults = [{ at: '2h', kind: 'meteor' }]))).toMatch(
      /^faults\[0\]\.kind: must be one of/,
    );
    expect(error((s) => (s.colour = 'blue'))).toMatch(/^colour: is not a known field/);
    expect(
      error(
        (s) =>
          (s.fleet = [
            ...s.fleet,
            { count: 1, id_prefix: 'd-', hardware_type: 'hw', firmware: { '1.0.0': 1 } },
          ]),
      ),
    ).toMatch(/^fleet\[1\]\.id_prefix: "d-" is used by an earlier group/);
    expect(
      error(
        (s) =>
          ((s.fleet[0] as Record<string, unknown>).profile = { schedule: [{ on: '25:00', off: '10:00' }] }),
      ),
    ).toMatch(/^fleet\[0\]\.profile\.schedule\[0\]\.on: must be a local time/);
  });
});
