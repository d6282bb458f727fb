/**
 * A rollout's progress as operators read it: per phase and overall, counts by state, success rate against
 * the threshold, the gate's latest decision, throughput, and an ETA that takes the waiting devices' past
 * connection patterns into account (a sample of them, scaled up, for large fleets).
 */
import { deviceStatus } from '../core/device.js';
import { type StateCounts, tally } from '../core/rollout/counts.js';
import {
  type ConnectionPattern,
  type Eta,
  type EtaDevice,
  estimateEta,
  meanGapFromHistory,
  observedThroughput,
} from '../core/rollout/eta.js';
import type { PlanDevice } from '../core/rollout/plan.js';
import type { GateRecord, PhaseStateCount, Rollout, Store, TimeContext } from '../store/store.js';
import { phaseCounts, purposeCounts } from './counts.js';
import type { PlannedRollout } from './rollout-service.js';

const HOUR = 3_600_000;
/** Waiting devices looked at one by one for the ETA; beyond this the sample stands for the rest. */
const ETA_SAMPLE = 2_000;
const HISTORY_MS = 14 * 24 * HOUR;
/** Devices handed to the ETA model at most. */
const ETA_ENTRIES = 50_000;

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
  throughputPerHour: number;
  eta: Eta | null;
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
    totals: { targets: t.total - t.excluded, counts: all, successRate: t.successRate },
    rollback: total(rollback) > 0 ? rollback : null,
    throughputPerHour,
    eta:
      open > 0 && (r.state === 'running' || r.state === 'scheduled')
        ? await eta(store, r, all, throughputPerHour, ctx)
        : null,
    failing: await store.rollouts.failures(r.id, 20),
  };
}

/** The ETA of a rollout not created yet: its plan's devices, with their connection patterns. */
export async function planEta(
  store: Store,
  planned: PlannedRollout,
  devices: readonly PlanDevice[],
  ctx: TimeContext,
): Promise<Eta> {
  const { spec, plan } = planned;
  const byId = new Map(devices.map((d) => [d.id, d]));
  const targets = plan.targets.filter((t) => t.state !== 'skipped');
  const sample = targets.slice(0, ETA_SAMPLE);
  const history = await store.rollouts.connectionTimes(
    sample.filter((t) => byId.get(t.deviceId)?.status !== 'online').map((t) => t.deviceId),
    ctx.now - HISTORY_MS,
  );
  const scale = Math.max(1, targets.length / Math.max(1, sample.length));
  const etaDevices = sample.map((t): EtaDevice => {
    const d = byId.get(t.deviceId);
    const gap = meanGapFromHistory(history.get(t.deviceId) ?? []);
    const pattern: ConnectionPattern =
      d?.status === 'online'
        ? { kind: 'online' }
        : gap !== null && d?.lastSeen != null
          ? { kind: 'periodic', lastSeen: d.lastSeen, meanGapMs: gap }
          : { kind: 'unknown' };
    return { phase: t.phase, pattern, timezone: d?.timezone ?? null };
  });
  return estimateEta({
    devices: etaDevices,
    ...(spec.strategy === 'progressive'
      ? { phases: spec.phases.map((p) => ({ name: p.name, waitMs: p.waitMs, quorum: p.quorum })) }
      : {}),
    maxConcurrent: spec.maxConcurrent / scale,
    ratePerMinute: spec.rate ? spec.rate.perMinute / scale : null,
    window: spec.window,
    notBefore: plan.startsAt,
    now: ctx.now,
  });
}

async function eta(
  store: Store,
  r: Rollout,
  all: StateCounts,
  throughputPerHour: number,
  ctx: TimeContext,
): Promise<Eta> {
  const { devices: sample, total: waiting } = await store.rollouts.waitingDevices(r.id, ETA_SAMPLE);
  const history = await store.rollouts.connectionTimes(
    sample
      .filter((d) => deviceStatus(d.lastSeen, null, ctx.now, ctx.thresholds) !== 'online')
      .map((d) => d.deviceId),
    ctx.now - HISTORY_MS,
  );
  const patternOf = (d: (typeof sample)[number]): ConnectionPattern => {
    if (deviceStatus(d.lastSeen, null, ctx.now, ctx.thresholds) === 'online') return { kind: 'online' };
    const gap = meanGapFromHistory(history.get(d.deviceId) ?? []);
    return gap !== null && d.lastSeen !== null
      ? { kind: 'periodic', lastSeen: d.lastSeen, meanGapMs: gap }
      : { kind: 'unknown' };
  };
  // Each sampled device stands for `weight` waiting ones. Past ETA_ENTRIES entries, one entry stands for
  // `scale` devices and the throughput is divided alike, which leaves the times unchanged.
  const weight = sample.length > 0 ? Math.max(1, Math.round(waiting / sample.length)) : 1;
  const active = tally(all).active;
  const scale = Math.max(1, (sample.length * weight + active) / ETA_ENTRIES);
  const copies = Math.max(1, Math.round(weight / scale));
  const devices: EtaDevice[] = [];
  for (const d of sample) {
    const one: EtaDevice = { phase: d.phase, pattern: patternOf(d), timezone: d.timezone };
    for (let i = 0; i < copies; i++) devices.push(one);
  }
  // Updates in progress are about to finish.
  for (let i = 0; i < Math.round(active / scale); i++)
    devices.push({ phase: r.currentPhase, pattern: { kind: 'online' } });
  const phases =
    r.spec.strategy === 'progressive'
      ? r.spec.phases.map((p, i) => ({
          name: p.name,
          waitMs: p.waitMs,
          quorum: p.quorum,
          startedAt: r.phaseStarts[i] ?? null,
        }))
      : undefined;
  return estimateEta({
    devices,
    ...(phases ? { phases } : {}),
    throughputPerHour: throughputPerHour > 0 ? throughputPerHour / scale : null,
    maxConcurrent: r.spec.maxConcurrent / scale,
    ratePerMinute: r.spec.rate ? r.spec.rate.perMinute / scale : null,
    window: r.spec.window,
    notBefore: r.spec.scheduledAt,
    now: ctx.now,
  });
}
