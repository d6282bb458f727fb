/** Rollouts, their progress and plans → the API's JSON (snake_case, ISO-8601 instants), as protocol/rollouts.ts describes it. */
import type { StateCounts } from '../core/rollout/counts.js';
import type { EtaBand } from '../core/rollout/eta-band.js';
import type { Reachability } from '../core/rollout/reachability.js';
import { toRolloutDocument } from '../core/rollout/spec-document.js';
import { formatLocal } from '../core/rollout/zone.js';
import type { RolloutProgress } from '../engine/progress.js';
import type { PlannedRollout } from '../engine/rollout-service.js';
import { iso } from '../protocol/common.js';
import type { EtaJson, GateJson, PlanJson, ReachabilityJson, RolloutJson } from '../protocol/rollouts.js';
import type { GateRecord, Rollout } from '../store/store.js';

const countsJson = (c: StateCounts) =>
  Object.fromEntries(Object.entries(c).filter(([, n]) => (n ?? 0) > 0)) as Record<string, number>;

const gateJson = (g: GateRecord): GateJson => ({
  decision: g.decision,
  reason: g.reason,
  success_rate: g.successRate,
  threshold: g.threshold,
  finished: g.finished,
  at: new Date(g.at).toISOString(),
});

export function reachabilityJson(r: Reachability): ReachabilityJson {
  return {
    days: r.days,
    checked: r.checked,
    reachable: r.reachable,
    too_new: r.tooNew,
    unreachable: r.unreachable,
    never_seen: r.neverSeen,
    suggestions: r.suggestions,
  };
}

export function etaJson(e: EtaBand): EtaJson {
  return {
    finish_at: new Date(e.finishAt).toISOString(),
    p50_at: new Date(e.finishAt).toISOString(),
    p90_at: new Date(e.p90At).toISOString(),
    source: e.updateTime.source,
    update_time: {
      typical_ms: Math.round(e.updateTime.typicalMs),
      slow_ms: Math.round(e.updateTime.slowMs),
      samples: e.updateTime.samples,
    },
    throughput_per_hour: Math.round(e.throughputPerHour * 10) / 10,
    unknown_devices: e.unknownDevices,
    phases: e.phases.map((p) => ({
      name: p.name,
      devices: p.devices,
      start_at: new Date(p.startAt).toISOString(),
      gate_at: new Date(p.gateAt).toISOString(),
      finish_at: new Date(p.finishAt).toISOString(),
    })),
  };
}

export function rolloutJson(r: Rollout, p: RolloutProgress): RolloutJson {
  return {
    id: r.id,
    name: r.name,
    state: r.state,
    strategy: r.spec.strategy,
    release: r.release,
    filter: r.spec.filter,
    spec: toRolloutDocument(r.spec),
    created_by: r.createdBy,
    created_at: new Date(r.createdAt).toISOString(),
    started_at: iso(r.startedAt),
    finished_at: iso(r.finishedAt),
    reason: r.reason,
    current_phase: r.currentPhase,
    phases: p.phases.map((ph) => ({
      name: ph.name,
      percentage: ph.percentage,
      devices: ph.devices,
      started_at: iso(ph.startedAt),
      counts: countsJson(ph.counts),
      success_rate: ph.successRate,
      threshold: ph.threshold,
      gate: ph.gate && gateJson(ph.gate),
    })),
    totals: {
      targets: p.totals.targets,
      counts: countsJson(p.totals.counts),
      success_rate: p.totals.successRate,
    },
    rollback: p.rollback && countsJson(p.rollback),
    rollback_unavailable: p.rollbackUnavailable && {
      count: p.rollbackUnavailable.total,
      devices: p.rollbackUnavailable.devices.map((d) => ({
        device_id: d.deviceId,
        version: d.version,
        reason: d.reason,
      })),
    },
    throughput_per_hour: Math.round(p.throughputPerHour * 10) / 10,
    eta: p.eta && {
      ...etaJson(p.eta),
      waiting: p.eta.waiting,
      reachability: reachabilityJson(p.eta.reachability),
    },
    failing: p.failing.map((f) => ({
      device_id: f.deviceId,
      error: f.error,
      at: new Date(f.at).toISOString(),
    })),
  };
}

const devices = (n: number) => `${n} device${n === 1 ? '' : 's'}`;

/** The dry run: what `create` would do, and when, without doing it. */
export function planJson(
  { spec, release, plan }: PlannedRollout,
  eta: EtaBand,
  reachability: Reachability & { targets: number },
  now: number,
): PlanJson {
  const timeline: Array<{ at: string; what: string }> = [];
  const add = (at: number, what: string) => timeline.push({ at: new Date(at).toISOString(), what });
  add(plan.startsAt, plan.startsAt <= now ? 'starts now' : 'starts (scheduled_at)');
  for (const w of plan.windows.slice(0, 12)) {
    add(
      w.opensAt,
      `window opens in ${w.timezone} (${formatLocal(w.timezone, w.opensAt)} local) for ${w.devices} devices`,
    );
  }
  eta.phases.forEach((p, i) => {
    if (i > 0) add(p.startAt, `${p.name} starts (${devices(p.devices)})`);
    if (spec.strategy === 'progressive') add(p.gateAt, `${p.name} gate judged`);
  });
  const unknown =
    eta.unknownDevices > 0
      ? ` (not counting ${devices(eta.unknownDevices)} not expected within four weeks)`
      : '';
  add(eta.finishAt, `estimated finish, P50${unknown} (update time: ${eta.updateTime.source})`);
  if (eta.p90At > eta.finishAt) add(eta.p90At, 'estimated finish, P90');
  timeline.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const skipped = plan.targets.filter((t) => t.state === 'skipped');
  return {
    dry_run: true,
    spec: toRolloutDocument(spec),
    release: `${release.name}@${release.version}`,
    targets: plan.counts.targets,
    online: plan.counts.online,
    offline: plan.counts.offline,
    by_status: plan.byStatus,
    skipped: skipped.slice(0, 1000).map((t) => ({ device_id: t.deviceId, reason: t.reason ?? '' })),
    skipped_total: skipped.length,
    phases: plan.phases,
    windows: plan.windows.map((w) => ({
      timezone: w.timezone,
      devices: w.devices,
      opens_at: new Date(w.opensAt).toISOString(),
      closes_at: new Date(w.closesAt).toISOString(),
      opens_local: formatLocal(w.timezone, w.opensAt),
      closes_local: formatLocal(w.timezone, w.closesAt),
    })),
    eta: etaJson(eta),
    reachability: { ...reachabilityJson(reachability), targets: reachability.targets },
    timeline,
    conflicts: plan.conflicts.map((c) => ({
      rollout_id: c.rolloutId,
      name: c.name,
      priority: c.priority,
      devices: c.devices,
      outcome: c.outcome,
    })),
  };
}
