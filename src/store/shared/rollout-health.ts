/**
 * What the health gate reads of a phase (core/rollout/health-gate.ts): its succeeded updates sorted into
 * classes by what their devices reported since, and the control group, in two aggregate queries whatever the
 * phase's size. A device falls in the first class that applies, in the order the SQL lists them.
 */
import { type RawBuilder, sql } from 'kysely';
import type { HealthSample } from '../../core/rollout/health-gate.js';
import type { SqlContext } from '../adapter.js';
import type { PhaseHealthQuery } from '../store.js';
import { silentBefore } from './filter-sql.js';

const n = (v: unknown) => Number(v ?? 0);
/** The server-wide thresholds as `silentBefore` reads them: here it reads the offline one only. */
const ctxOf = (q: PhaseHealthQuery) => ({
  now: q.now,
  thresholds: { offlineAfterMs: q.offlineAfterMs, abandonedAfterMs: q.offlineAfterMs },
});
const count = (condition: RawBuilder<unknown>) => sql<number>`sum(case when ${condition} then 1 else 0 end)`;

export async function phaseHealth(
  s: SqlContext,
  id: string,
  phase: number,
  q: PhaseHealthQuery,
): Promise<HealthSample> {
  // Heard from since the update succeeded: the new version had to boot and report.
  const confirmed = sql`d.last_seen > u.finished_at`;
  const fellBack = sql`${confirmed} and (d.firmware_version is null or d.firmware_version <> ${q.version})`;
  // Without the gate's own figure, each device's offline threshold: its class's, read from its row (no join).
  const darkSince =
    q.darkAfterMs === null ? silentBefore('offline_after_ms', ctxOf(q), 'd') : sql`${q.now - q.darkAfterMs}`;
  const dark = sql`(d.last_seen is null or d.last_seen < ${darkSince})`;
  const limits: RawBuilder<unknown>[] = [];
  if (q.maxReboots !== null) limits.push(sql`coalesce(d.reboots, 0) > ${q.maxReboots}`);
  if (q.maxAppCrashes !== null) limits.push(sql`coalesce(d.app_crashes, 0) > ${q.maxAppCrashes}`);
  const overLimit = limits.length === 0 ? sql`1 = 0` : sql`(${sql.join(limits, sql` or `)})`;
  const crashing = sql`${confirmed} and ${overLimit}`;
  const soaking = sql`u.finished_at > ${q.now - q.soakMs}`;
  const row = await s.db
    .selectFrom('device_updates as u')
    .innerJoin('devices as d', 'd.id', 'u.device_id')
    .select([
      sql<number>`count(*)`.as('succeeded'),
      count(fellBack).as('fell_back'),
      count(sql`not (${fellBack}) and ${dark}`).as('dark'),
      count(sql`not (${fellBack}) and not ${dark} and ${crashing}`).as('crashing'),
      count(sql`not ${dark} and not (${confirmed})`).as('unconfirmed'),
      count(sql`${confirmed} and not (${fellBack}) and not ${dark} and not (${crashing}) and ${soaking}`).as(
        'soaking',
      ),
      count(sql`${confirmed} and coalesce(d.app_crashes, 0) > 0`).as('updated_crashed'),
      count(confirmed).as('updated_confirmed'),
    ])
    .where('u.rollout_id', '=', id)
    .where('u.phase', '=', phase)
    .where('u.purpose', '=', 'update')
    .where('u.state', '=', 'succeeded')
    .executeTakeFirstOrThrow();
  // The control group: online devices of the rollout still waiting for the release, whatever their phase.
  const control = await s.db
    .selectFrom('device_updates as u')
    .innerJoin('devices as d', 'd.id', 'u.device_id')
    .select([sql<number>`count(*)`.as('control'), count(sql`coalesce(d.app_crashes, 0) > 0`).as('crashed')])
    .where('u.rollout_id', '=', id)
    .where('u.purpose', '=', 'update')
    .where('u.state', 'in', ['pending', 'scheduled'])
    .where('d.last_seen', '>=', silentBefore('offline_after_ms', ctxOf(q), 'd'))
    .executeTakeFirstOrThrow();
  return {
    succeeded: n(row.succeeded),
    fellBack: n(row.fell_back),
    dark: n(row.dark),
    crashing: n(row.crashing),
    unconfirmed: n(row.unconfirmed),
    soaking: n(row.soaking),
    updatedCrashed: n(row.updated_crashed),
    updatedConfirmed: n(row.updated_confirmed),
    control: n(control.control),
    controlCrashed: n(control.crashed),
  };
}
