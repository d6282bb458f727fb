/**
 * The per-rollout alert rules on a rollout the real engine halts (VirtualFleet: the API, store and engine on a
 * fake clock), on each database: a failing first phase fires `phase_failure_rate`, the halt fires
 * `rollout_halted`, each keyed by the rollout and carrying its id; a resume resolves the halt's alert and, the
 * phase still failing, fires the failure rate's again.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseAlertRules } from '../src/core/alerts/alert-rule.js';
import { AlertEvaluator } from '../src/engine/alert-evaluator.js';
import { VirtualFleet } from '../src/sim/virtual-fleet.js';
import { command, create, HOUR, syntheticFleet } from './support/rollouts.js';
import { forEachDatabase } from './support/stores.js';

let fleet: VirtualFleet | undefined;
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

forEachDatabase((database) => {
  let db: string | undefined;
  beforeEach(async () => {
    db = await database.fresh();
  });

  it('a failing phase and the halt it causes fire per-rollout alerts; resuming resolves the halt', async () => {
    const f = await VirtualFleet.create({ start: Date.parse('2026-01-05T12:00:00Z'), db });
    fleet = f;
    await f.importFleet(syntheticFleet(20));
    await f.release('fw', '1.0.0', ['hw-a', 'hw-b']);
    await f.release('fw', '2.0.0', ['hw-a', 'hw-b']);
    for (const d of f.devices.values()) await d.heartbeat();
    const alerts = new AlertEvaluator(f.parts.store, f.clock, f.parts.thresholds);
    alerts.setRules(
      parseAlertRules({
        rules: [
          { name: 'halted', kind: 'rollout_halted', severity: 'critical' },
          { name: 'failing', kind: 'phase_failure_rate', above_pct: 10, min_finished: 5 },
        ],
      }),
    );
    await alerts.prime();
    const failing = new Set<string>();
    f.setOutcome((id) => (failing.has(id) ? { kind: 'fail', error: 'crash' } : { kind: 'succeed' }));
    const r = await create(f, {
      name: 'edge',
      release: 'fw@2.0.0',
      filter: '',
      strategy: 'progressive',
      phases: [
        { name: 'first half', percentage: 50, wait: '1h', success_rate: 90 },
        { name: 'rest', percentage: 100 },
      ],
      retry: { attempts: 1 },
      rollback_on_halt: false,
    });
    const firstHalf = (
      await f.api<{ updates: Array<{ device_id: string }> }>(
        'GET',
        `/api/v1/rollouts/${r.id}/updates?phase=0`,
      )
    ).updates.map((u) => u.device_id);
    for (const id of firstHalf.slice(0, 3)) failing.add(id);
    await f.connect(f.devices.keys());
    await alerts.evaluate();
    expect(alerts.list()).toMatchObject([
      { key: `failing/${r.id}`, phase: 'firing', value: 30, rolloutId: r.id },
    ]);

    f.advance(HOUR);
    await f.tick();
    expect((await f.api<{ state: string }>('GET', `/api/v1/rollouts/${r.id}`)).state).toBe('halted');
    await alerts.evaluate();
    expect(alerts.list().map((a) => [a.key, a.phase])).toEqual([[`halted/${r.id}`, 'firing']]);

    await command(f, r.id, 'resume');
    await alerts.evaluate();
    const events = (
      await f.api<{ events: Array<{ type: string; rollout_id: string | null; data: { key: string } }> }>(
        'GET',
        '/api/v1/events/recent?type=alert.',
      )
    ).events.reverse();
    expect(events.map((e) => [e.type, e.data.key])).toEqual([
      ['alert.firing', `failing/${r.id}`],
      // Halted, the rollout no longer runs: the halt's alert fires and the failure rate's resolves.
      ['alert.firing', `halted/${r.id}`],
      ['alert.resolved', `failing/${r.id}`],
      // Resumed with its phase still failing 30 %: the halt's alert resolves, the failure rate's fires again.
      ['alert.resolved', `halted/${r.id}`],
      ['alert.firing', `failing/${r.id}`],
    ]);
    expect(events.every((e) => e.rollout_id === r.id)).toBe(true);
  });
});
