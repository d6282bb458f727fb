/**
 * examples/scenarios/dark-after-update.yaml: a release that installs fine and then makes 5 % of devices go dark
 * within 2 hours. With the health gate the canary halts (and rolls back) with "went dark after updating" in the
 * report; the same release without it completes.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { formatReport } from '../src/sim/report.js';
import { buildResult } from '../src/sim/result.js';
import { parseScenarioText } from '../src/sim/scenario.js';
import { Simulator } from '../src/sim/simulator.js';

it('the health gate halts the canary of a release that darkens 5 % of devices; without it the rollout completes', async () => {
  const text = readFileSync(new URL('../examples/scenarios/dark-after-update.yaml', import.meta.url), 'utf8');
  const result = buildResult(await new Simulator(parseScenarioText(text, 'dark-after-update')).run());
  const report = formatReport(result);
  const gated = result.rollouts.find((r) => r.name === 'gated-2.0.0')!;
  const open = result.rollouts.find((r) => r.name === 'open-2.0.0')!;
  expect(gated.state, report).toBe('rolled_back');
  expect(gated.reason).toMatch(/^canary: .* went dark after updating/);
  expect(open.state, report).toBe('completed');
  expect(report).toContain('went dark after updating');
  expect(report).toMatch(/Rollout open-2\.0\.0 .*: completed/);
}, 60_000);
