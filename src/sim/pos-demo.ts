/**
 * Seed 001's six POS scenarios, each on a fresh copy of the 10-terminal fleet, run by the real server in
 * virtual time with terminals that speak the device protocol. Each returns a device-by-device account:
 * what happened to every terminal, when (UTC and its own local time), and why.
 */
import { formatLocal } from '../core/rollout/zone.js';
import type { EventJson } from '../protocol/operator-api.js';
import type { UpdateJson } from '../protocol/releases.js';
import type { RolloutJson } from '../protocol/rollouts.js';
import type { FleetDeviceJson } from './virtual-fleet.js';
import { VirtualFleet } from './virtual-fleet.js';

export interface PosFleetFile {
  now: string;
  devices: Array<FleetDeviceJson & { id: string; timezone: string; firmware_version: string }>;
}

export interface DeviceLine {
  deviceId: string;
  timezone: string;
  from: string;
  to: string;
  /** `updated`, `failed`, `skipped`, `waiting` (still queued at the end), `not targeted` */
  outcome: string;
  /** When it started (was granted its slot), if it did. */
  startedAt: number | null;
  detail: string;
}

export interface ScenarioAccount {
  number: number;
  title: string;
  useCase: string;
  spec: Record<string, unknown>;
  rolloutState: string;
  reason: string | null;
  devices: DeviceLine[];
  summary: string;
}

/**
 * When each terminal that is offline at the start comes back (hours after the start); the others stay online.
 * Denver (a pop-up store, never seen) does not come back within the demo.
 */
const RECONNECTS: Record<string, number> = {
  'pos-boston-001': 6,
  'pos-miami-001': 20,
  'pos-seattle-001': 44,
};
const STEP_MS = 15 * 60_000;
const HOUR = 3_600_000;

interface Scenario {
  number: number;
  title: string;
  useCase: string;
  release: string;
  spec: Record<string, unknown>;
  hours: number;
  /** Devices whose update of the release fails (a bad build on them). */
  failing?: string[];
  /** Offline terminals come back (RECONNECTS) during the run. */
  reconnect: boolean;
}

export const POS_SCENARIOS: Scenario[] = [
  {
    number: 1,
    title: 'Immediate update (critical security patch)',
    useCase: 'CVE announced: patch every online terminal right now; offline ones are left out.',
    release: '2.3.1',
    spec: { name: 'cve patch', filter: '', strategy: 'immediate', offline: 'skip' },
    hours: 1,
    reconnect: false,
  },
  {
    number: 2,
    title: 'Scheduled maintenance window (02:00–04:00 in each store’s time zone)',
    useCase: 'Major firmware update with possible downtime, only while the stores are closed.',
    release: '2.4.0',
    spec: {
      name: 'night update',
      filter: '',
      strategy: 'scheduled',
      window: { start: '02:00', end: '04:00', timezone: 'device' },
    },
    hours: 48,
    reconnect: true,
  },
  {
    number: 3,
    title: 'Progressive rollout: canary 10% (24 h, 95%) → 50% (12 h, 90%) → 100% (85%)',
    useCase: 'New, untested firmware: minimise the blast radius, stop if the canary suffers.',
    release: '2.4.0',
    spec: {
      name: 'progressive 2.4.0',
      filter: '',
      strategy: 'progressive',
      phases: [
        { name: 'canary', percentage: 10, wait: '24h', success_rate: 95 },
        { name: 'phase 1', percentage: 50, wait: '12h', success_rate: 90 },
        { name: 'phase 2', percentage: 100, success_rate: 85 },
      ],
      seed: 1,
    },
    hours: 60,
    reconnect: true,
  },
  {
    number: 3,
    title: 'Progressive rollout, with a canary that fails',
    useCase:
      'The same rollout when the build is bad on the canary: the rollout halts and rolls back, nothing spreads.',
    release: '2.4.0',
    spec: {
      name: 'progressive 2.4.0 (bad build)',
      filter: '',
      strategy: 'progressive',
      phases: [
        { name: 'canary', percentage: 10, wait: '24h', success_rate: 95 },
        { name: 'phase 1', percentage: 50, wait: '12h', success_rate: 90 },
        { name: 'phase 2', percentage: 100, success_rate: 85 },
      ],
      retry: { attempts: 1 },
      seed: 1,
    },
    failing: ['*'],
    hours: 60,
    reconnect: true,
  },
  {
    number: 4,
    title: 'On-connect (offline terminals)',
    useCase: 'Three terminals are offline (store closed, network down): each updates as soon as it connects.',
    release: '2.4.0',
    spec: { name: 'on connect', filter: 'status=offline', strategy: 'on_connect' },
    hours: 48,
    reconnect: true,
  },
  {
    number: 5,
    title: 'Region-based update (tag region=northeast)',
    useCase: 'Tax law change in NY and MA: only the northeast terminals.',
    release: '2.4.0',
    spec: { name: 'northeast tax', filter: 'tag.region=northeast', strategy: 'immediate' },
    hours: 12,
    reconnect: true,
  },
  {
    number: 6,
    title: 'Firmware upgrade of everything older than 2.2.0, in the night window',
    useCase: 'End-of-life firmware (2.0.x, 2.1.x): bring those terminals up, leave the others alone.',
    release: '2.4.0',
    spec: {
      name: 'eol firmware',
      filter: 'firmware < 2.2.0',
      strategy: 'scheduled',
      window: { start: '02:00', end: '04:00', timezone: 'device' },
    },
    hours: 48,
    reconnect: true,
  },
];

export async function runPosScenario(file: PosFleetFile, scenario: Scenario): Promise<ScenarioAccount> {
  const start = Date.parse(file.now);
  const fleet = await VirtualFleet.create({ start });
  try {
    await fleet.importFleet(file);
    await fleet.release('pos-fw', scenario.release, ['pos-x100', 'pos-x200']);
    if (scenario.failing) {
      const failing = new Set(scenario.failing);
      fleet.setOutcome((id) =>
        failing.has('*') || failing.has(id)
          ? { kind: 'fail', error: 'kernel panic on boot' }
          : { kind: 'succeed' },
      );
    }
    const spec = { ...scenario.spec, release: `pos-fw@${scenario.release}` };
    const rollout = await fleet.api<RolloutJson>('POST', '/api/v1/rollouts', spec);
    const online = new Set(
      file.devices
        .filter((d) => d.last_seen !== null && start - Date.parse(String(d.last_seen)) <= 10 * 60_000)
        .map((d) => d.id),
    );
    // Terminals check in at the start, then on every quarter hour (so a 02:00 window opens at 02:00).
    for (let t = start; t <= start + scenario.hours * HOUR; t = (Math.floor(t / STEP_MS) + 1) * STEP_MS) {
      fleet.clock.set(t);
      if (scenario.reconnect) {
        for (const [id, hours] of Object.entries(RECONNECTS)) if (t >= start + hours * HOUR) online.add(id);
      }
      await fleet.connect(online);
      await fleet.tick();
    }
    return await account(fleet, file, scenario, rollout.id);
  } finally {
    await fleet.close();
  }
}

async function account(
  fleet: VirtualFleet,
  file: PosFleetFile,
  scenario: Scenario,
  id: string,
): Promise<ScenarioAccount> {
  const r = await fleet.api<RolloutJson>('GET', `/api/v1/rollouts/${id}`);
  const { updates } = await fleet.api<{ updates: UpdateJson[] }>(
    'GET',
    `/api/v1/rollouts/${id}/updates?limit=1000`,
  );
  const { events } = await fleet.api<{ events: EventJson[] }>(
    'GET',
    `/api/v1/events?rollout=${id}&type=update.notified&limit=1000`,
  );
  const started = new Map<string, number>();
  for (const e of events)
    if (e.device_id && !started.has(e.device_id)) started.set(e.device_id, Date.parse(e.at));
  const byDevice = new Map(updates.filter((u) => u.purpose === 'update').map((u) => [u.device_id, u]));
  const devices = file.devices.map((d): DeviceLine => {
    const u = byDevice.get(d.id);
    const at = started.get(d.id) ?? null;
    const when =
      at === null
        ? ''
        : `${new Date(at).toISOString().slice(0, 16).replace('T', ' ')}Z = ${formatLocal(d.timezone, at).slice(0, 16).replace('T', ' ')} local`;
    const line = { deviceId: d.id, timezone: d.timezone, from: d.firmware_version, startedAt: at };
    if (!u)
      return {
        ...line,
        to: d.firmware_version,
        outcome: 'not targeted',
        detail: 'does not match the filter',
      };
    switch (u.state) {
      case 'succeeded':
        return { ...line, to: scenario.release, outcome: 'updated', detail: `started ${when}` };
      case 'failed':
      case 'rolled_back':
        return {
          ...line,
          to: d.firmware_version,
          outcome: 'failed',
          detail: `${u.error ?? 'failed'} (started ${when})`,
        };
      case 'skipped':
      case 'cancelled':
        return { ...line, to: d.firmware_version, outcome: u.state, detail: u.error ?? '' };
      default:
        return {
          ...line,
          to: d.firmware_version,
          outcome: 'waiting',
          detail: `${u.state}: ${waitingWhy(d.id, r.state)}`,
        };
    }
  });
  const count = (o: string) => devices.filter((d) => d.outcome === o).length;
  const summary = `${r.state}: ${count('updated')} updated, ${count('failed')} failed, ${count('waiting')} still waiting, ${count('skipped')} skipped, ${count('not targeted')} not targeted`;
  return {
    number: scenario.number,
    title: scenario.title,
    useCase: scenario.useCase,
    spec: { ...scenario.spec, release: `pos-fw@${scenario.release}` },
    rolloutState: r.state,
    reason: r.reason,
    devices,
    summary,
  };
}

function waitingWhy(deviceId: string, state: string): string {
  if (state === 'halted' || state === 'rolled_back') return 'the rollout halted before its turn';
  if (!(deviceId in RECONNECTS)) return 'never connected during the demo (queued for when it does)';
  return 'queued for its next window or connection';
}

/** The account as text: one block per scenario, one line per terminal. */
export function renderAccount(a: ScenarioAccount): string {
  const width = (k: keyof DeviceLine) => Math.max(...a.devices.map((d) => String(d[k]).length));
  const [w1, w2, w3] = [width('deviceId'), width('timezone'), width('outcome')];
  const lines = [
    `── Scenario ${a.number}: ${a.title}`,
    `   ${a.useCase}`,
    `   spec: ${JSON.stringify(a.spec)}`,
    '',
    ...a.devices.map(
      (d) =>
        `   ${d.deviceId.padEnd(w1)}  ${d.timezone.padEnd(w2)}  ${`${d.from} → ${d.to}`.padEnd(15)}  ${d.outcome.padEnd(w3)}  ${d.detail}`,
    ),
    '',
    `   ${a.summary}${a.reason ? ` — ${a.reason}` : ''}`,
  ];
  return lines.join('\n');
}
