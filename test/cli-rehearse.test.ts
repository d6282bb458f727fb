/**
 * `fleetd deploy create --rehearse`: the real binary against a real server process rehearses a quick rollout
 * on the registry and creates nothing.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

const FIXTURE = join(import.meta.dirname, '../examples/pos-fleet.json');
let server: ServerProcess;
let cli: (...args: string[]) => ReturnType<typeof runCli>;

beforeAll(async () => {
  const data = tempDir();
  server = await spawnServer(data);
  cli = (...args) => runCli(['--server', server.url, '--data', data, ...args]);
  expect(cli('devices', 'import', FIXTURE).code).toBe(0);
  const artifact = join(data, 'fw.bin');
  writeFileSync(artifact, 'pos firmware 2.4.0\n'.repeat(100));
  const hardware = ['--hardware', 'pos-x100', '--hardware', 'pos-x200'];
  expect(
    cli('artifact', 'upload', artifact, '--name', 'pos-fw', '--version', '2.4.0', ...hardware).code,
  ).toBe(0);
});
afterAll(async () => {
  await server.kill();
});

describe('fleetd deploy create --rehearse', () => {
  it('answers the rehearsal (seeds, gates, deadline) and creates nothing; a bad flag is one line', () => {
    const quick = [
      '--release',
      'pos-fw@2.4.0',
      '--filter',
      'tag.region=northeast',
      '--strategy',
      'progressive',
    ];
    const phases = ['--initial', '34%', '--interval', '1h', '--success-rate', '95'];
    const rehearse = ['--rehearse', '--failure-rate', '5%', '--deadline', '72h', '--seeds', '3'];
    const out = cli('deploy', 'create', ...quick, ...phases, ...rehearse, '-o', 'json');
    expect(out.code).toBe(0);
    const r = JSON.parse(out.stdout);
    expect(r).toMatchObject({ rehearsal: true, targets: 3, rehearsed: 3, seeds: 3, failure_rate: 0.05 });
    expect(r.runs).toHaveLength(3);
    expect(r.phases.map((p: { name: string }) => p.name)).toEqual(['phase 1', 'phase 2']);
    expect(r.phases[0].gate).not.toBeNull();
    expect(r.deadline.at).toBeTruthy();
    expect(r.limits).toEqual({ devices: 2000, seeds: 10, horizon_hours: 672 });
    expect(JSON.parse(cli('deploy', 'ls', '-o', 'json').stdout).rollouts).toEqual([]);

    // Checked by the server: a 400 with the field named, printed as one line.
    const late = cli('deploy', 'create', ...quick, ...phases, '--rehearse', '--deadline', 'soon');
    expect(late.code).not.toBe(0);
    expect(late.stderr.trim()).toMatch(/^fleetd: .*deadline: "soon" is not a duration/);
    expect(late.stderr.trim().split('\n')).toHaveLength(1);

    const bad = cli('deploy', 'create', ...quick, ...phases, '--rehearse', '--failure-rate', '1.5');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toBe(
      'fleetd: --failure-rate: "1.5" is not a share between 0 and 1 (or 0%–100%)',
    );
  }, 60_000);
});
