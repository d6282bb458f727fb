/**
 * Which devices a rollout takes, into which phase, and which it leaves out and why: one pure function that
 * both the dry run and the real creation call, so `--dry-run` shows exactly what `create` will do.
 */
import type { DeviceStatus } from '../device.js';
import {
  type OverlapConflict,
  overlapConflicts,
  overlapSkipReason,
  type WaitingElsewhere,
} from './overlap.js';
import { type Candidate, phaseSizes, rolloutOrder } from './phases.js';
import type { RolloutSpec } from './spec.js';
import { currentOrNextWindow, type MaintenanceWindow, windowZone } from './window.js';

export interface PlanDevice {
  id: string;
  status: DeviceStatus;
  lastSeen: number | null;
  timezone: string | null;
  hardwareType: string | null;
  firmwareVersion: string | null;
  /** The device's value of the `max_concurrent_per` tag, if the spec has one. */
  tagValue: string | null;
  /** An update this device is working on now (it is not interrupted). */
  busyWith: string | null;
  /** The open rollout this device waits in, its update not started (filled by the store for a new rollout). */
  waitingIn?: WaitingElsewhere | null;
  /**
   * With `window: device_defined`, the windows the device takes (its own, its groups', its tags'), when the
   * dry run read them; none: the rollout's fallback window.
   */
  windows?: readonly MaintenanceWindow[] | null;
  /** Its connectivity class's offline threshold (docs/connectivity.md); absent or null: the server-wide one. */
  offlineAfterMs?: number | null;
}

export interface PlanRelease {
  version: string;
  hardware: readonly string[];
}

export interface PlannedTarget {
  deviceId: string;
  phase: number;
  /** pending: may start now; scheduled: waits for its phase or the start; skipped: left out (see reason). */
  state: 'pending' | 'scheduled' | 'skipped';
  reason: string | null;
  slotKey: string | null;
  fromVersion: string | null;
}

export interface PlannedPhase {
  name: string;
  percentage: number;
  devices: number;
  online: number;
  /** The first devices of the phase (the canaries of a first phase). */
  sample: string[];
}

export interface PlannedWindow {
  timezone: string;
  devices: number;
  /** The first opening in this zone at or after the start, and its close. */
  opensAt: number;
  closesAt: number;
}

export interface RolloutPlan {
  startsAt: number;
  /** With a window: when the first target's window opens (at or after the start); null without one. */
  firstWindowAt: number | null;
  /** Skipped devices first, then the rest in rollout order (online first, shuffled by the seed). */
  targets: PlannedTarget[];
  /** The same targets in the order the devices were given (the store's: by id), the order they are written in. */
  targetsByDevice: PlannedTarget[];
  phases: PlannedPhase[];
  windows: PlannedWindow[];
  counts: { targets: number; online: number; offline: number; skipped: number };
  /** Targets waiting in other open rollouts, per rollout, with the outcome the spec's `overlap` gives them. */
  conflicts: OverlapConflict[];
  byStatus: Partial<Record<DeviceStatus, number>>;
}

const SAMPLE = 10;

function skipReason(d: PlanDevice, spec: RolloutSpec, release: PlanRelease): string | null {
  if (d.status === 'decommissioned') return 'decommissioned';
  if (d.hardwareType !== null && !release.hardware.includes(d.hardwareType)) {
    return `hardware ${d.hardwareType} is not one of ${release.hardware.join(', ')}`;
  }
  if (d.firmwareVersion === release.version) return `already runs ${release.version}`;
  if (d.busyWith !== null) return `busy with update ${d.busyWith}`;
  if (d.status === 'abandoned') return 'abandoned (silent past the abandoned threshold)';
  if (spec.offline === 'skip' && d.status !== 'online') return `${d.status} at the start (offline: skip)`;
  // Last: a conflict counts only devices the rollout would otherwise take.
  return overlapSkipReason(spec, d.waitingIn ?? null);
}

/** Phase names of the plan: progressive's own; one per batch for rolling; else a single phase. */
function phaseLayout(spec: RolloutSpec, eligible: number): Array<{ name: string; percentage: number }> {
  if (spec.strategy === 'progressive')
    return spec.phases.map((p) => ({ name: p.name, percentage: p.percentage }));
  if (spec.strategy === 'rolling' && spec.batchSize !== null) {
    const batches = Math.max(1, Math.ceil(eligible / spec.batchSize));
    return Array.from({ length: batches }, (_, i) => ({
      name: `batch ${i + 1}`,
      percentage: eligible === 0 ? 100 : Math.min(100, (((i + 1) * spec.batchSize!) / eligible) * 100),
    }));
  }
  return [{ name: spec.strategy === 'blue_green' ? 'stage' : 'all', percentage: 100 }];
}

export function planRollout(
  spec: RolloutSpec,
  release: PlanRelease,
  devices: readonly PlanDevice[],
  now: number,
): RolloutPlan {
  const startsAt = Math.max(now, spec.scheduledAt ?? now);
  const startsNow = startsAt <= now;
  // Small candidates that point back at their device: copying a million devices costs more than planning them.
  const eligible: Array<Candidate & { index: number; phase: number }> = [];
  const reasons: Array<string | null> = [];
  const byStatus: Partial<Record<DeviceStatus, number>> = {};
  devices.forEach((d, index) => {
    byStatus[d.status] = (byStatus[d.status] ?? 0) + 1;
    const reason = skipReason(d, spec, release);
    reasons.push(reason);
    if (reason === null) eligible.push({ id: d.id, online: d.status === 'online', index, phase: 0 });
  });

  const layout = phaseLayout(spec, eligible.length);
  const ordered = rolloutOrder(eligible, spec.seed);
  const phaseOf = phaseIndexer(spec, layout, ordered.length);
  const phases: PlannedPhase[] = layout.map((p) => ({ ...p, devices: 0, online: 0, sample: [] }));
  ordered.forEach((c, i) => {
    c.phase = phaseOf(i);
    const p = phases[c.phase]!;
    p.devices++;
    if (c.online) p.online++;
    if (p.sample.length < SAMPLE) p.sample.push(c.id);
  });
  // Made in device order, as the devices are read (a million of them: in order is several times faster).
  let next = 0;
  const targetsByDevice = devices.map((d, index) => {
    const reason = reasons[index]!;
    if (reason !== null) return target(d, 0, 'skipped', reason);
    const { phase } = eligible[next++]!;
    return target(d, phase, startsNow && phase === 0 ? 'pending' : 'scheduled', null);
  });
  const targets = [
    ...targetsByDevice.filter((t) => t.state === 'skipped'),
    ...ordered.map((c) => targetsByDevice[c.index]!),
  ];

  const online = eligible.filter((c) => c.online).length;
  const windows = spec.deviceWindows
    ? deviceWindowsByZone(
        spec,
        eligible.map((c) => devices[c.index]!),
        startsAt,
      )
    : spec.window
      ? windowsByZone(
          spec,
          eligible.map((c) => devices[c.index]!),
          startsAt,
        )
      : [];
  return {
    startsAt,
    firstWindowAt: windows.length > 0 ? Math.max(startsAt, Math.min(...windows.map((w) => w.opensAt))) : null,
    targets,
    targetsByDevice,
    phases,
    windows,
    counts: {
      targets: eligible.length,
      online,
      offline: eligible.length - online,
      skipped: devices.length - eligible.length,
    },
    conflicts: overlapConflicts(
      spec,
      devices.filter(
        (d, i) => d.waitingIn && (reasons[i] === null || reasons[i] === overlapSkipReason(spec, d.waitingIn)),
      ),
    ),
    byStatus,
  };
}

function target(
  d: PlanDevice,
  phase: number,
  state: PlannedTarget['state'],
  reason: string | null,
): PlannedTarget {
  return { deviceId: d.id, phase, state, reason, slotKey: d.tagValue, fromVersion: d.firmwareVersion };
}

function phaseIndexer(
  spec: RolloutSpec,
  layout: Array<{ percentage: number }>,
  total: number,
): (i: number) => number {
  if (spec.strategy === 'rolling' && spec.batchSize !== null) {
    const size = spec.batchSize;
    return (i) => Math.floor(i / size);
  }
  if (spec.strategy !== 'progressive') return () => 0;
  const bounds = phaseSizes(
    total,
    layout.map((p) => p.percentage),
  ).map((s) => s.cumulative);
  return (i) => {
    const phase = bounds.findIndex((cumulative) => i < cumulative);
    return phase < 0 ? bounds.length - 1 : phase;
  };
}

function windowsByZone(spec: RolloutSpec, devices: readonly PlanDevice[], startsAt: number): PlannedWindow[] {
  const window = spec.window!;
  const byZone = new Map<string, number>();
  for (const d of devices) {
    const zone = windowZone(window, d.timezone);
    byZone.set(zone, (byZone.get(zone) ?? 0) + 1);
  }
  return [...byZone]
    .map(([timezone, count]) => {
      const w = currentOrNextWindow(window, timezone, startsAt);
      return { timezone, devices: count, opensAt: w.start, closesAt: w.end };
    })
    .sort((a, b) => a.opensAt - b.opensAt || (a.timezone < b.timezone ? -1 : 1));
}

/**
 * With `window: device_defined`: devices grouped by the zone and the first opening (at or after the start) of the
 * windows they take, their own or their groups' or tags' (the fallback window for the others; none holds those
 * without any). Devices sharing a windows list (a group's) are worked out once per zone.
 */
function deviceWindowsByZone(
  spec: RolloutSpec,
  devices: readonly PlanDevice[],
  startsAt: number,
): PlannedWindow[] {
  const fallback = spec.window ? [spec.window] : [];
  const opening = new Map<
    readonly MaintenanceWindow[],
    Map<string, { zone: string; start: number; end: number }>
  >();
  const groups = new Map<string, PlannedWindow>();
  for (const d of devices) {
    const windows = d.windows && d.windows.length > 0 ? d.windows : fallback;
    if (windows.length === 0) continue;
    const byZone = opening.get(windows) ?? new Map();
    opening.set(windows, byZone);
    const tz = d.timezone ?? '';
    let first = byZone.get(tz);
    if (!first) {
      for (const w of windows) {
        const zone = windowZone(w, d.timezone);
        const next = currentOrNextWindow(w, zone, startsAt);
        if (!first || next.start < first.start) first = { zone, start: next.start, end: next.end };
      }
      byZone.set(tz, first!);
    }
    const key = `${first!.zone}|${first!.start}|${first!.end}`;
    const g = groups.get(key);
    if (g) g.devices++;
    else groups.set(key, { timezone: first!.zone, devices: 1, opensAt: first!.start, closesAt: first!.end });
  }
  return [...groups.values()].sort(
    (a, b) => a.opensAt - b.opensAt || (a.timezone < b.timezone ? -1 : a.timezone > b.timezone ? 1 : 0),
  );
}
