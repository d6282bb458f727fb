import { describe, expect, it } from 'vitest';
import type { DeviceStatus } from '../device.js';
import { mulberry32 } from '../random.js';
import { rolloutOrder } from './phases.js';
import { type PlanDevice, planRollout } from './plan.js';
import { parseRolloutSpec } from './spec.js';

const NOW = Date.UTC(2026, 0, 5, 12);
const RELEASE = { version: '2.0.0', hardware: ['hw-a'] };
const STATUSES: DeviceStatus[] = ['online', 'online', 'offline', 'unknown', 'abandoned'];

/** Devices in id order, as the store gives them, some of which the plan skips. */
function fleet(n: number, seed: number): PlanDevice[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => ({
    id: `dev-${String(i).padStart(5, '0')}`,
    status: STATUSES[Math.floor(rnd() * STATUSES.length)]!,
    lastSeen: NOW - Math.floor(rnd() * 1e9),
    timezone: rnd() < 0.5 ? 'Europe/Paris' : 'America/New_York',
    hardwareType: rnd() < 0.1 ? 'hw-b' : 'hw-a',
    firmwareVersion: rnd() < 0.1 ? '2.0.0' : '1.0.0',
    tagValue: null,
    busyWith: rnd() < 0.05 ? `upd_${i}` : null,
  }));
}

const SPECS = [
  { name: 'a', release: 'fw@2.0.0', filter: '', strategy: 'immediate' },
  { name: 'b', release: 'fw@2.0.0', filter: '', strategy: 'immediate', offline: 'skip' },
  {
    name: 'c',
    release: 'fw@2.0.0',
    filter: '',
    strategy: 'progressive',
    seed: 7,
    phases: [
      { name: 'canary', percentage: 1, wait: '1h' },
      { name: 'half', percentage: 50, wait: '1h' },
      { name: 'all', percentage: 100, wait: '1h' },
    ],
  },
  { name: 'd', release: 'fw@2.0.0', filter: '', strategy: 'rolling', batch_size: 300 },
].map((s) => parseRolloutSpec(s));

describe('planRollout', () => {
  for (const spec of SPECS) {
    it(`${spec.strategy}${spec.offline === 'skip' ? ' (offline: skip)' : ''}: every device once, by device and in rollout order`, () => {
      const devices = fleet(2_000, spec.name.charCodeAt(0));
      const plan = planRollout(spec, RELEASE, devices, NOW);
      expect(plan.targetsByDevice.map((t) => t.deviceId)).toEqual(devices.map((d) => d.id));
      expect(new Set(plan.targets)).toEqual(new Set(plan.targetsByDevice));
      const skipped = plan.targets.filter((t) => t.state === 'skipped');
      expect(skipped.length).toBe(plan.counts.skipped);
      expect(plan.targets.slice(0, skipped.length)).toEqual(skipped);
      // The rest follow the rollout order of the eligible devices, phase by phase.
      const eligible = devices.filter((d) => !skipped.some((s) => s.deviceId === d.id));
      const order = rolloutOrder(
        eligible.map((d) => ({ ...d, online: d.status === 'online' })),
        spec.seed,
      ).map((d) => d.id);
      const rest = plan.targets.slice(skipped.length);
      expect(rest.map((t) => t.deviceId)).toEqual(order);
      expect(rest.map((t) => t.phase)).toEqual([...rest.map((t) => t.phase)].sort((a, b) => a - b));
      expect(plan.phases.reduce((n, p) => n + p.devices, 0)).toBe(rest.length);
      expect(plan.phases[0]!.sample).toEqual(order.slice(0, plan.phases[0]!.sample.length));
    });
  }

  it('gives the same plan whatever order the devices come in, but writes them in that order', () => {
    const devices = fleet(500, 3);
    const reversed = [...devices].reverse();
    const a = planRollout(SPECS[2]!, RELEASE, devices, NOW);
    const b = planRollout(SPECS[2]!, RELEASE, reversed, NOW);
    expect(b.phases).toEqual(a.phases);
    expect(new Set(b.targets.map((t) => JSON.stringify(t)))).toEqual(
      new Set(a.targets.map((t) => JSON.stringify(t))),
    );
    expect(b.targetsByDevice.map((t) => t.deviceId)).toEqual(reversed.map((d) => d.id));
  });
});
