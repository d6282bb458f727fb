/**
 * A rollout's progress as operators read it: per phase and overall, counts by state, success rate against
 * the threshold, the gate's latest decision, throughput, and an ETA (core/rollout/eta.ts) fed with what the
 * store knows: the waiting devices' status history (a sample of them, each standing for its share of its
 * phase), the update times observed, the spec.
 */
import { deviceStatus } from '../core/device.js';
import { type StateCounts, tally } from '../core/rollout/counts.js';
import { type EtaDevice, type EtaInput, type EtaPhase, observedThroughput } from '../core/rollout/eta.js';
import { type EtaBand, estimateEtaBand, type UpdateTime, updateTimeFrom } from '../core/rollout/eta-band.js';
import type { PlanDevice, PlannedTarget } from '../core/rollout/plan.js';
import { type DeviceHistory, LocalHours, learnPresence } from '../core/rollout/presence.js';
import {
  assessReachability,
  type Reachability,
  type ReachabilityTarget,
} from '../core/rollout/reachability.js';
import type { RolloutSpec } from '../core/rollout/spec.js';
import { STATUS_LOOKBACK_MS } from '../core/rollout/status-days.js';
import type { MaintenanceWindow } from '../core/rollout/window.js';
import type {
  GateRecord,
  PhaseStateCount,
  Rollout,
  Store,
  TimeContext,
  WaitingDevice,
} from '../store/store.js';
import { phaseCounts, purposeCounts } from './counts.js';
import type { PlannedRollout } from './rollout-service.js';

const HOUR = 3_600_000;
/** Waiting devices whose history the ETA reads; beyond this the sample stands for the rest. */
const ETA_SAMPLE = 2_000;
/** Finished updates whose time (granted → finished) makes the update time. */
const DURATIONS = 500;
/** Targets a dry run reads the status history of for reachability; beyond this, the first ones. */
const REACHABILITY_CHECKED = 20_000;

/** The ETA band, and the waiting devices its sample judged unreachable in their window. */
export interface LiveEta extends EtaBand {
  reachability: Reachability;
  /** Devices waiting; reachability counts the sampled ones when more. */
  waiting: number;
}

export interface PhaseProgress {
  name: string;
  percentage: number;
  devices: number;
  startedAt: number | null;
  counts: StateCounts;
  successRate: number | null;
  threshold: number | null;
  gate: GateRecord | null;
}

export interface RolloutProgress {
  phases: PhaseProgress[];
  totals: { targets: number; counts: StateCounts; successRate: number | null };
  rollback: StateCounts | null;
  /** Rolled back: the devices that cannot return, and why (the first 20; `total` counts them all). */
  rollbackUnavailable: {
    total: number;
    devices: Array<{ deviceId: string; version: string | null; reason: string }>;
  } | null;
  throughputPerHour: number;
  eta: LiveEta | null;
  failing: Array<{ deviceId: string; error: string | null; at: number }>;
}

/** Phase names: progressive's own, one per rolling batch, stage/switch for blue-green, else one. */
function phaseLayout(
  r: Rollout,
  counts: readonly PhaseStateCount[],
): Array<{ name: string; percentage: number }> {
  const s = r.spec;
  if (s.strategy === 'progressive') return s.phases.map((p) => ({ name: p.name, percentage: p.percentage }));
  if (s.strategy === 'blue_green') {
    return [
      { name: 'stage', percentage: 100 },
      { name: 'switch', percentage: 100 },
    ];
  }
  if (s.strategy === 'rolling') {
    const batches = Math.max(1, ...counts.filter((c) => c.purpose === 'update').map((c) => c.phase + 1));
    return Array.from({ length: batches }, (_, i) => ({
      name: `batch ${i + 1}`,
      percentage: Math.round(((i + 1) * 100) / batches),
    }));
  }
  return [{ name: 'all', percentage: 100 }];
}

const total = (c: StateCounts) => Object.values(c).reduce((a, b) => a + (b ?? 0), 0);

export async function rolloutProgress(store: Store, r: Rollout, ctx: TimeContext): Promise<RolloutProgress> {
  const counts = await store.rollouts.counts(r.id);
  const layout = phaseLayout(r, counts);
  const phases = layout.map((p, i): PhaseProgress => {
    const c =
      r.spec.strategy === 'blue_green'
        ? purposeCounts(counts, i === 0 ? 'update' : 'switch')
        : phaseCounts(counts, i, 'update');
    return {
      name: p.name,
      percentage: p.percentage,
      devices: total(c),
      startedAt: r.phaseStarts[i] ?? null,
      counts: c,
      successRate: tally(c).successRate,
      threshold: r.spec.strategy === 'progressive' ? (r.spec.phases[i]?.successRate ?? null) : null,
      gate: r.gates.find((g) => g.phase === i) ?? null,
    };
  });
  const all = purposeCounts(counts, 'update');
  const t = tally(all);
  const rollback = purposeCounts(counts, 'rollback');
  const finished = await store.rollouts.finishedSince(r.id, ctx.now - HOUR);
  const throughputPerHour = observedThroughput(finished, ctx.now);
  const open = t.waiting + t.active;
  return {
    phases,
    // The targets the rollout took on (at creation, and joined since), whatever happened to them since: a
    // cancel shows as cancelled updates of the same targets, not as a rollout to fewer devices.
    totals: {
      targets: Math.max(r.targets, t.total - (all.skipped ?? 0)),
      counts: all,
      successRate: t.successRate,
    },
    rollback: total(rollback) > 0 ? rollback : null,
    rollbackUnavailable: r.state === 'rolled_back' ? await rollbackUnavailable(store, r) : null,
    throughputPerHour,
    eta:
      open > 0 && (r.state === 'running' || r.state === 'scheduled')
        ? await eta(store, r, counts, ctx)
        : null,
    failing: await store.rollouts.failures(r.id, 20),
  };
}

async function rollbackUnavailable(
  store: Store,
  r: Rollout,
): Promise<RolloutProgress['rollbackUnavailable']> {
  const u = await store.rollouts.rollbackUnavailable(r.id, 20);
  if (u.total === 0) return null;
  return {
    total: u.total,
    devices: u.devices.map((d) => ({
      ...d,
      reason:
        d.version === null
          ? 'the version it ran before is unknown (it reported none)'
          : `no release ${u.release}@${d.version} in the store`,
    })),
  };
}

/** At most `max` of a plan's targets, every k-th one, with what the ETA learns from of each device. */
export function evenSample(
  targets: readonly PlannedTarget[],
  devices: readonly PlanDevice[],
  max: number,
): Array<{
  deviceId: string;
  phase: number;
  lastSeen: number | null;
  timezone: string | null;
  hardwareType: string | null;
  windows: readonly MaintenanceWindow[] | null;
  offlineAfterMs: number | null;
}> {
  const byId = new Map(devices.map((d) => [d.id, d]));
  const stride = Math.max(1, targets.length / max);
  return Array.from({ length: Math.min(targets.length, max) }, (_, i) => {
    const t = targets[Math.floor(i * stride)]!;
    const d = byId.get(t.deviceId);
    return {
      deviceId: t.deviceId,
      phase: t.phase,
      lastSeen: d?.lastSeen ?? null,
      timezone: d?.timezone ?? null,
      hardwareType: d?.hardwareType ?? null,
      windows: d?.windows ?? null,
      offlineAfterMs: d?.offlineAfterMs ?? null,
    };
  });
}

/** The ETA of a rollout not created yet: its plan's devices, with their status history. */
export async function planEta(
  store: Store,
  planned: PlannedRollout,
  devices: readonly PlanDevice[],
  ctx: TimeContext,
): Promise<EtaBand> {
  const { spec, plan } = planned;
  const targets = plan.targets.filter((t) => t.state !== 'skipped');
  // Every k-th target: the plan lists online devices first.
  const sample = evenSample(targets, devices, ETA_SAMPLE);
  const waiting = new Map<number, number>();
  for (const t of targets) waiting.set(t.phase, (waiting.get(t.phase) ?? 0) + 1);
  // A loop, not Math.max(...targets): spreading a million arguments overflows the stack.
  let batches = 1;
  for (const t of targets) batches = Math.max(batches, t.phase + 1);
  const { histories: _, ...learnt } = await etaDevices(store, sample, waiting, ctx);
  return estimateEtaBand(
    {
      ...learnt,
      ...specInput(spec),
      phases: etaPhases(spec, batches, () => ({})),
      startedAt: plan.startsAt,
      notBefore: plan.startsAt,
    },
    updateTimeFrom([], await store.rollouts.hardwareUpdateDurations(hardwareOf(sample), null, DURATIONS)),
  );
}

/**
 * The plan's targets that were not online inside their window on any of the last days, and those never seen
 * (the first REACHABILITY_CHECKED targets: the plan lists online devices first).
 */
export async function planReachability(
  store: Store,
  planned: PlannedRollout,
  devices: readonly PlanDevice[],
  ctx: TimeContext,
): Promise<Reachability & { targets: number }> {
  const byId = new Map(devices.map((d) => [d.id, d]));
  const targets = planned.plan.targets.filter((t) => t.state !== 'skipped');
  const checked = targets.slice(0, REACHABILITY_CHECKED).map((t) => {
    const d = byId.get(t.deviceId);
    return {
      deviceId: t.deviceId,
      lastSeen: d?.lastSeen ?? null,
      timezone: d?.timezone ?? null,
      offlineAfterMs: d?.offlineAfterMs ?? null,
    };
  });
  const histories = await readHistories(store, checked, ctx);
  return {
    ...assessReachability({
      targets: checked.map((d, i) => ({ deviceId: d.deviceId, history: histories[i]! })),
      window: planned.spec.window,
      missedWindow: planned.spec.missedWindow,
      now: ctx.now,
    }),
    targets: targets.length,
  };
}

const hardwareOf = (sample: ReadonlyArray<{ hardwareType: string | null }>) => [
  ...new Set(sample.flatMap((d) => (d.hardwareType ? [d.hardwareType] : []))),
];

async function eta(
  store: Store,
  r: Rollout,
  counts: readonly PhaseStateCount[],
  ctx: TimeContext,
): Promise<LiveEta> {
  const { devices: waitingSample, total: waitingTotal } = await store.rollouts.waitingDevices(
    r.id,
    ETA_SAMPLE,
  );
  const sample = await withWindows(store, r.spec, waitingSample, ctx);
  const staging = r.spec.strategy === 'blue_green';
  const phaseOf = (phase: number) =>
    staging ? purposeCounts(counts, 'update') : phaseCounts(counts, phase, 'update');
  const batches = Math.max(1, ...counts.filter((c) => c.purpose === 'update').map((c) => c.phase + 1));
  const phases = etaPhases(r.spec, staging ? 1 : batches, (i) => {
    const t = tally(phaseOf(i));
    return { startedAt: r.phaseStarts[i] ?? null, finished: t.finished, active: t.active };
  });
  const waiting = new Map(phases.map((_, i) => [i, tally(phaseOf(i)).waiting]));
  const all = tally(purposeCounts(counts, 'update'));
  const { histories, ...learnt } = await etaDevices(
    store,
    staging ? sample.map((d) => ({ ...d, phase: 0 })) : sample,
    waiting,
    ctx,
  );
  const band = estimateEtaBand(
    {
      ...learnt,
      ...specInput(r.spec),
      phases,
      retry: r.spec.retry,
      failureRate: all.finished > 0 ? all.failed / all.finished : null,
      succeeded: all.succeeded,
      startedAt: r.startedAt,
    },
    await updateTime(store, r.id, sample),
  );
  const targets: ReachabilityTarget[] = sample.map((d, i) => ({
    deviceId: d.deviceId,
    history: histories[i]!,
  }));
  return {
    ...band,
    reachability: assessReachability({
      targets,
      window: r.spec.window,
      missedWindow: r.spec.missedWindow,
      now: ctx.now,
    }),
    waiting: waitingTotal,
  };
}

/** With `window: device_defined`, the sampled devices with the windows they take (their own, groups', tags'). */
async function withWindows<T extends { deviceId: string }>(
  store: Store,
  spec: RolloutSpec,
  sample: readonly T[],
  ctx: TimeContext,
): Promise<Array<T & { windows?: readonly MaintenanceWindow[] | null }>> {
  if (!spec.deviceWindows) return [...sample];
  const resolved = await store.deviceWindows.resolve(
    sample.map((d) => d.deviceId),
    ctx,
  );
  return sample.map((d) => ({ ...d, windows: resolved.get(d.deviceId)?.windows ?? null }));
}

/** This rollout's update times once one has finished; before, those of earlier rollouts on the same hardware. */
async function updateTime(store: Store, id: string, sample: readonly Sampled[]): Promise<UpdateTime> {
  const observed = await store.rollouts.updateDurations(id, DURATIONS);
  if (observed.length > 0) return updateTimeFrom(observed, []);
  return updateTimeFrom([], await store.rollouts.hardwareUpdateDurations(hardwareOf(sample), id, DURATIONS));
}

type Sampled = Pick<
  WaitingDevice,
  'deviceId' | 'phase' | 'lastSeen' | 'timezone' | 'hardwareType' | 'offlineAfterMs'
> & {
  /** With `window: device_defined`, the windows the device takes (its own, its groups', its tags'). */
  windows?: readonly MaintenanceWindow[] | null;
};

/**
 * The sampled devices with what their history says, each standing for its share of its phase's waiting
 * devices (a phase with none sampled borrows the whole sample).
 */
async function etaDevices(
  store: Store,
  sample: readonly Sampled[],
  waiting: ReadonlyMap<number, number>,
  ctx: TimeContext,
): Promise<{ devices: EtaDevice[]; clock: LocalHours; now: number; histories: DeviceHistory[] }> {
  const histories = await readHistories(store, sample, ctx);
  const clock = new LocalHours();
  const learnt = learnPresence(histories, ctx.now, clock);
  const sampled = new Map<number, number>();
  for (const d of sample) sampled.set(d.phase, (sampled.get(d.phase) ?? 0) + 1);
  const devices: EtaDevice[] = [];
  for (const [phase, count] of waiting) {
    if (count <= 0) continue;
    const own = sampled.get(phase) ?? 0;
    sample.forEach((d, i) => {
      if (own === 0 || d.phase === phase) {
        devices.push({
          phase,
          presence: learnt[i]!,
          weight: count / (own || sample.length),
          ...(d.windows ? { windows: d.windows } : {}),
        });
      }
    });
  }
  return { devices, clock, now: ctx.now, histories };
}

/** The devices' status history over the look-back, as the ETA and reachability read it. */
export async function readHistories(
  store: Store,
  devices: ReadonlyArray<
    Pick<Sampled, 'deviceId' | 'lastSeen' | 'timezone'> & {
      hardwareType?: string | null;
      offlineAfterMs?: number | null;
    }
  >,
  ctx: TimeContext,
): Promise<DeviceHistory[]> {
  const since = ctx.now - STATUS_LOOKBACK_MS;
  const stored = await store.rollouts.statusHistory(
    devices.map((d) => d.deviceId),
    since,
  );
  return devices.map((d): DeviceHistory => {
    const h = stored.get(d.deviceId);
    return {
      from: Math.max(since, h?.registeredAt ?? since),
      changes: h?.changes ?? [],
      // Online by its connectivity class's threshold when it has one (docs/connectivity.md).
      online:
        deviceStatus(d.lastSeen, null, ctx.now, {
          ...ctx.thresholds,
          offlineAfterMs: d.offlineAfterMs ?? ctx.thresholds.offlineAfterMs,
        }) === 'online',
      lastSeen: d.lastSeen,
      timezone: d.timezone,
      kind: d.hardwareType ?? null,
    };
  });
}

/** Progressive phases, rolling batches, or one phase for the rest. */
function etaPhases(spec: RolloutSpec, batches: number, known: (i: number) => Partial<EtaPhase>): EtaPhase[] {
  if (spec.strategy === 'progressive') {
    return spec.phases.map((p, i) => ({
      name: p.name,
      waitMs: p.waitMs,
      quorum: p.quorum,
      maxConcurrent: p.maxConcurrent,
      rate: p.rate,
      ...known(i),
    }));
  }
  if (spec.strategy === 'rolling') {
    return Array.from({ length: batches }, (_, i) => ({ name: `batch ${i + 1}`, waitMs: 0, ...known(i) }));
  }
  return [{ name: 'all', waitMs: 0, ...known(0) }];
}

function specInput(spec: RolloutSpec): Omit<EtaInput, 'devices' | 'now'> {
  return {
    strategy: spec.strategy,
    maxConcurrent: spec.maxConcurrent,
    rate: spec.rate,
    window: spec.window,
    missedWindow: spec.missedWindow,
    notBefore: spec.scheduledAt,
    endAt: spec.endAt,
    continuous: spec.strategy === 'on_connect',
  };
}
