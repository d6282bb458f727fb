/** The readable report of a simulation (the JSON result is the same data). */
import type { StateCounts } from '../core/rollout/counts.js';
import type { SimResult } from './result.js';

const ORDER = [
  'scheduled',
  'pending',
  'notified',
  'downloading',
  'installing',
  'verifying',
  'succeeded',
  'failed',
  'rolled_back',
  'cancelled',
  'skipped',
];
const counts = (c: StateCounts) =>
  ORDER.filter((s) => (c[s as keyof StateCounts] ?? 0) > 0)
    .map((s) => `${s} ${(c[s as keyof StateCounts] ?? 0).toLocaleString('en-US')}`)
    .join(', ') || 'none';

export function formatReport(r: SimResult): string {
  const lines: string[] = [];
  lines.push(
    `Scenario ${r.scenario} (seed ${r.seed}): ${r.devices.toLocaleString('en-US')} devices, ${r.start} → ${r.end}`,
  );
  lines.push(
    `Run: ${r.run.wall_seconds} s (setup ${r.run.setup_seconds} s), ${r.run.device_days_per_second.toLocaleString('en-US')} device-days/s, ` +
      `peak RSS ${r.run.peak_rss_mb} MB; ${r.run.heartbeats.toLocaleString('en-US')} heartbeats, ${r.run.reports.toLocaleString('en-US')} reports, ` +
      `${r.run.engine_passes} engine passes, ${r.run.syncs} syncs (every ${r.run.sync_every_seconds === null ? '—' : `${r.run.sync_every_seconds / 3600} h`}), ` +
      `steps of ${r.run.step_seconds} s; devices enter at the ${r.layer} layer; database in ${r.run.database === 'memory' ? 'memory' : 'a file'}`,
  );
  for (const ro of r.rollouts) {
    lines.push(
      '',
      `Rollout ${ro.name} (${ro.strategy}, ${ro.release}, ${ro.targets.toLocaleString('en-US')} targets): ${ro.state}${ro.reason ? ` — ${ro.reason}` : ''}`,
    );
    lines.push(`  started ${ro.started_at ?? '—'}, finished ${ro.finished_at ?? '—'}`);
    lines.push(`  final: ${counts(ro.final)}`);
    lines.push(
      `  peak concurrent ${ro.peak_concurrent} (limit ${ro.max_concurrent})` +
        (ro.peak_concurrent_per
          ? `, per ${ro.peak_concurrent_per.tag} ${ro.peak_concurrent_per.peak} (limit ${ro.peak_concurrent_per.limit})`
          : '') +
        `; outside window ${ro.outside_window}; offered twice ${ro.double_offers}`,
    );
    const d = ro.downloads;
    lines.push(
      `  downloads: ${d.full.toLocaleString('en-US')} full (${d.bytes_full.toLocaleString('en-US')} bytes), ` +
        `${d.delta.toLocaleString('en-US')} delta (${d.bytes_delta.toLocaleString('en-US')} bytes)`,
    );
    for (const g of ro.gates) {
      lines.push(
        `  gate ${g.name}: ${g.decision}${g.reason ? ` (${g.reason})` : ''} at ${g.at}; success ${g.success_rate?.toFixed(1) ?? '—'}% of ${g.finished} ` +
          `(threshold ${g.threshold ?? '—'}%; devices ${g.device_success_rate?.toFixed(1) ?? '—'}%, injected ${g.expected_success_rate?.toFixed(1) ?? '—'}%)`,
      );
    }
    if (ro.plan) {
      const u = ro.plan.reachability;
      lines.push(
        `  dry run: finish P50 ${ro.plan.p50_at}, P90 ${ro.plan.p90_at} (update time: ${ro.plan.source}); ` +
          `${u.unreachable.count} of ${u.checked} judged not reached in their window in ${u.days} days, ${u.never_seen.count} never seen`,
      );
      for (const s of u.suggestions) lines.push(`    ${s}`);
    }
    for (const e of ro.eta) {
      if (e.when === 'hourly') continue;
      lines.push(
        `  ETA at phase ${e.phase + 1} start (${e.at}): ${e.predicted_finish ?? 'unknown'}; actual ${e.actual_finish ?? 'not finished'}` +
          `${e.error_pct === null ? '' : ` (${e.error_pct > 0 ? '+' : ''}${e.error_pct}% of the time remaining)`}${e.unknown_devices ? `; ${e.unknown_devices} devices with no known pattern` : ''}`,
      );
    }
    const hourly = ro.eta.filter((e) => e.when === 'hourly' && e.error_pct !== null);
    if (hourly.length > 0) {
      // The estimate as the rollout ran: its error at each point, every 6 h and the last.
      lines.push('  ETA error (P50 / P90, % of the time left; source; finished so far), every 6 h:');
      const pct = (v: number | null) => (v === null ? '—' : `${v > 0 ? '+' : ''}${v}%`);
      hourly.forEach((e, n) => {
        if (n % 6 === 0 || n === hourly.length - 1)
          lines.push(
            `    ${e.at}  ${pct(e.error_pct)} / ${pct(e.p90_error_pct)}; ${e.source ?? '—'}; ${e.done_pct ?? '—'}% done${e.unreachable ? `; ${e.unreachable} unreachable` : ''}`,
          );
      });
    }
    const syncs = r.run.sync_every_seconds;
    if (ro.eta.length > 0 && (syncs === null || syncs > 3600)) {
      // The ETA learns connection patterns from the status history, which sparse syncs leave thin.
      lines.push(
        `  (the server saw idle devices ${syncs === null ? 'only when it read them' : `every ${syncs / 3600} h`}: set simulation.sync_every: 1h for an ETA to trust; docs/simulator.md)`,
      );
    }
    lines.push('  timeline (every 6 h):');
    ro.timeline.forEach((t, n) => {
      if (n % 6 === 0 || n === ro.timeline.length - 1) lines.push(`    ${t.at}  ${counts(t.counts)}`);
    });
  }
  lines.push('', 'Checks:');
  for (const c of r.checks)
    lines.push(`  ${c.pass ? 'pass' : 'FAIL'}  ${c.rollout}: ${c.name} — ${c.detail}`);
  lines.push('', r.pass ? 'All checks passed.' : 'Some checks FAILED.');
  return lines.join('\n');
}
