/** How `fleetd deploy` shows rollouts and plans to people: pure functions from the API's JSON to text. */
import type { PhaseJson, PlanJson, ReachabilityJson, RolloutJson } from '../protocol/rollouts.js';
import { table } from './output.js';

export const FINAL_ROLLOUT_STATES = new Set(['completed', 'cancelled', 'rolled_back']);

const n = (c: Record<string, number>, ...states: string[]) => states.reduce((a, s) => a + (c[s] ?? 0), 0);
const pct = (v: number | null) => (v === null ? '-' : `${Math.round(v * 10) / 10}%`);
/** `2024-10-21T02:00:00.000Z` → `2024-10-21 02:00Z` */
const short = (iso: string) => iso.replace('T', ' ').replace(/:\d\d\.\d{3}Z$/, 'Z');

export function duration(ms: number): string {
  const m = Math.max(0, Math.round(ms / 60_000));
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? ` ${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** `[█████▒▒░░░]`: succeeded █, failed ✗ in the bar as ▓, in progress ▒, waiting ░. */
export function bar(c: Record<string, number>, width = 24): string {
  const total = Object.values(c).reduce((a, b) => a + b, 0) - n(c, 'skipped', 'cancelled');
  if (total <= 0) return `[${' '.repeat(width)}]`;
  const cells = (k: number) => Math.round((k / total) * width);
  const ok = cells(n(c, 'succeeded'));
  const bad = cells(n(c, 'failed', 'rolled_back'));
  const busy = cells(n(c, 'notified', 'downloading', 'installing', 'verifying'));
  const filled = Math.min(width, ok + bad + busy);
  return `[${'█'.repeat(ok)}${'▓'.repeat(bad)}${'▒'.repeat(busy)}${'░'.repeat(width - filled)}]`;
}

const cancelled = (c: Record<string, number>) =>
  n(c, 'cancelled') > 0 ? ` (${n(c, 'cancelled')} cancelled)` : '';

function phaseLine(p: PhaseJson, current: boolean): string {
  const c = p.counts;
  const parts = [
    `${current ? '▶' : ' '} ${p.name.padEnd(12)}`,
    bar(c),
    `${n(c, 'succeeded')}/${p.devices - n(c, 'skipped')}`,
    `ok ${n(c, 'succeeded')}  failed ${n(c, 'failed', 'rolled_back')}  working ${n(c, 'notified', 'downloading', 'installing', 'verifying')}  waiting ${n(c, 'pending', 'scheduled')}${n(c, 'cancelled') > 0 ? `  cancelled ${n(c, 'cancelled')}` : ''}`,
  ];
  if (p.threshold !== null) parts.push(`success ${pct(p.success_rate)} (needs ${pct(p.threshold)})`);
  else if (p.success_rate !== null) parts.push(`success ${pct(p.success_rate)}`);
  if (p.gate) parts.push(`gate: ${p.gate.decision}${p.gate.reason ? ` — ${p.gate.reason}` : ''}`);
  return parts.join('  ');
}

export function renderRollout(r: RolloutJson, now: number): string {
  const lines = [
    `${r.name}  (${r.id})`,
    `${r.strategy} rollout of ${r.release} to ${r.totals.targets} devices${cancelled(r.totals.counts)} — ${r.state.toUpperCase()}${r.reason ? `: ${r.reason}` : ''}`,
    `filter: ${r.filter || '(whole fleet)'}`,
    '',
    ...r.phases.map((p, i) => phaseLine(p, i === r.current_phase && !FINAL_ROLLOUT_STATES.has(r.state))),
    '',
    `overall  ${bar(r.totals.counts)}  success ${pct(r.totals.success_rate)}  throughput ${r.throughput_per_hour}/h`,
  ];
  if (r.rollback)
    lines.push(
      `rollback ${bar(r.rollback)}  ${n(r.rollback, 'succeeded')} returned to their previous version`,
    );
  if (r.rollback_unavailable) lines.push(...rollbackUnavailableLines(r));
  if (r.eta) {
    const unknown =
      r.eta.unknown_devices > 0 ? ` (+${r.eta.unknown_devices} not expected within four weeks)` : '';
    lines.push(`ETA      ${band(r.eta, now)}${unknown}`);
    const reach = reachabilityLines(r.eta.reachability, 'waiting');
    if (reach.length > 0) lines.push(...reach.map((l) => `         ${l}`));
  }
  if (r.failing.length > 0) {
    lines.push('', 'failing devices:');
    for (const f of r.failing.slice(0, 10)) lines.push(`  ${f.device_id}  ${f.error ?? '(no reason given)'}`);
  }
  return lines.join('\n');
}

/** What a halt (a failed gate, the abort criteria) will do, for rollouts that can halt. */
export function onHalt(spec: PlanJson['spec']): string | null {
  if (spec.strategy !== 'progressive' && (spec.abort === undefined || spec.abort === null)) return null;
  const what = spec.strategy === 'progressive' ? 'a failed gate' : 'the abort criteria';
  return spec.rollback_on_halt
    ? `on ${what}: halt and roll back every updated device to its previous version (rollback_on_halt: true)`
    : `on ${what}: halt, no rollback (rollback_on_halt: false)`;
}

/** Each phase's health gate in words (docs/health-gates.md), for the dry run. */
export function healthGateLines(spec: PlanJson['spec']): string[] {
  return (spec.phases ?? []).flatMap((ph) => {
    const h = ph.health;
    if (!h) return [];
    const parts = [
      `watched ${h.soak} after updating`,
      `dark after ${h.dark_after ?? "each device's offline threshold"} without a heartbeat`,
    ];
    if (h.max_reboots !== undefined) parts.push(`at most ${h.max_reboots} reboots`);
    if (h.max_app_crashes !== undefined) parts.push(`at most ${h.max_app_crashes} app crashes`);
    if (h.crash_rate_margin !== undefined)
      parts.push(`crash rate at most ${h.crash_rate_margin} points above devices not yet updated`);
    return [`  ${ph.name ?? ''}: ${parts.join('; ')}`];
  });
}

/** Devices a rollback cannot return, why, and what the operator can do about it. */
export function rollbackUnavailableLines(r: RolloutJson): string[] {
  const u = r.rollback_unavailable;
  if (!u) return [];
  const lines = [`${u.count} devices cannot return to their previous version:`];
  for (const d of u.devices) lines.push(`  ${d.device_id}  ${d.reason}`);
  if (u.count > u.devices.length) lines.push(`  … and ${u.count - u.devices.length} more`);
  const name = r.release.split('@')[0];
  lines.push(
    `upload the firmware they ran as a release (fleetd artifact upload FILE --name ${name} --version VERSION), then run fleetd deploy rollback ${r.id} again`,
  );
  return lines;
}

/** What `deploy rollback` answers: how many devices return, how many cannot. */
export function rollbackSummary(r: RolloutJson): string[] {
  const returning = r.rollback ? Object.values(r.rollback).reduce((a, b) => a + b, 0) : 0;
  const returned = r.rollback ? n(r.rollback, 'succeeded') : 0;
  return [
    `${returning} devices returning to their previous version (${returned} returned so far)`,
    ...rollbackUnavailableLines(r),
  ];
}

export function renderPlan(p: PlanJson, now: number): string {
  const lines = [
    `DRY RUN — nothing was created.`,
    `${p.spec.strategy} rollout "${p.spec.name}" of ${p.release} to ${p.targets} devices: ${p.online} online, ${p.offline} offline`,
    `by status: ${Object.entries(p.by_status)
      .map(([s, k]) => `${s} ${k}`)
      .join(', ')}`,
  ];
  const halt = onHalt(p.spec);
  if (halt) lines.push(halt);
  lines.push(...conflictLines(p));
  if (p.skipped_total > 0) {
    lines.push('', `left out (${p.skipped_total}):`);
    for (const s of p.skipped.slice(0, 20)) lines.push(`  ${s.device_id}  ${s.reason}`);
    if (p.skipped_total > 20) lines.push(`  … and ${p.skipped_total - 20} more`);
  }
  lines.push(
    '',
    table(
      ['PHASE', 'UP TO', 'DEVICES', 'ONLINE', 'FIRST DEVICES'],
      p.phases.map((ph) => [
        ph.name,
        `${Math.round(ph.percentage * 10) / 10}%`,
        ph.devices,
        ph.online,
        ph.sample.slice(0, 5).join(' '),
      ]),
    ),
  );
  const health = healthGateLines(p.spec);
  if (health.length > 0)
    lines.push('', 'health gates (each device counts once a heartbeat reports the new version):', ...health);
  if (p.windows.length > 0) {
    lines.push(
      '',
      table(
        ['TIME ZONE', 'DEVICES', 'WINDOW OPENS (LOCAL)', 'CLOSES (LOCAL)'],
        p.windows.map((w) => [w.timezone, w.devices, w.opens_local, w.closes_local]),
      ),
    );
  }
  lines.push('', 'timeline:');
  for (const t of p.timeline) lines.push(`  ${short(t.at)}  ${t.what}`);
  lines.push('', `estimated finish ${band(p.eta, now)}`);
  const reach = reachabilityLines(p.reachability, 'targeted');
  if (reach.length > 0) lines.push('', 'reachability:', ...reach.map((l) => `  ${l}`));
  return lines.join('\n');
}

/** P50–P90 and where the update time came from. */
export function band(e: PlanJson['eta'], now: number): string {
  const p50 = Date.parse(e.p50_at);
  const p90 = Date.parse(e.p90_at);
  const source = {
    observed: 'update time observed',
    history: 'update time of earlier rollouts on this hardware',
    default: 'update time assumed: no update on this hardware has finished yet',
  }[e.source];
  return `P50 ${short(e.p50_at)} (in ${duration(p50 - now)}), P90 ${short(e.p90_at)} (in ${duration(p90 - now)}); ${source}`;
}

/** The targets a window has not reached lately, the first of them, and what to do. */
export function reachabilityLines(r: ReachabilityJson, who: string): string[] {
  const lines: string[] = [];
  if (r.unreachable.count === 0 && r.never_seen.count === 0) return lines;
  if (r.unreachable.count > 0) {
    const first = r.unreachable.devices.slice(0, 5).join(' ');
    const more = r.unreachable.count > 5 ? ` … and ${r.unreachable.count - 5} more` : '';
    lines.push(
      `${r.unreachable.count} of ${r.checked} ${who} devices judged were not online inside their window on any of the last ${r.days} days: ${first}${more}`,
    );
  }
  if (r.never_seen.count > 0) {
    const first = r.never_seen.devices.slice(0, 5).join(' ');
    const more = r.never_seen.count > 5 ? ` … and ${r.never_seen.count - 5} more` : '';
    lines.push(`${r.never_seen.count} never seen: ${first}${more}`);
  }
  for (const s of r.suggestions) lines.push(`→ ${s}`);
  return lines;
}

export function rolloutRows(rollouts: RolloutJson[]): Array<Array<string | number | null>> {
  return rollouts.map((r) => [
    r.id,
    r.name,
    r.strategy,
    r.release,
    r.state,
    `${r.phases[r.current_phase]?.name ?? '-'}`,
    `${n(r.totals.counts, 'succeeded')}/${r.totals.targets}`,
    pct(r.totals.success_rate),
    r.eta ? `${short(r.eta.p50_at)}–${short(r.eta.p90_at)}` : '-',
  ]);
}

const OUTCOMES: Record<PlanJson['conflicts'][number]['outcome'], string> = {
  superseded: 'taken over by this rollout',
  kept: 'stay there (priority)',
  refused: 'creation refused (overlap: refuse)',
};

/** Targets waiting in other open rollouts: a conflict per rollout, with its count and what happens to them. */
function conflictLines(p: PlanJson): string[] {
  if (p.conflicts.length === 0) return [];
  const total = p.conflicts.reduce((n, c) => n + c.devices, 0);
  const lines = [
    '',
    `CONFLICT: ${total} targets wait in other open rollouts (overlap: ${p.spec.overlap}, priority ${p.spec.priority}):`,
  ];
  for (const c of p.conflicts) {
    lines.push(
      `  ${c.rollout_id} "${c.name}" (priority ${c.priority}): ${c.devices} — ${OUTCOMES[c.outcome]}`,
    );
  }
  return lines;
}
