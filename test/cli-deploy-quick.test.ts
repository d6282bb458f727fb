/**
 * `fleetd deploy create` from flags (no spec file) and `fleetd deploy promote` on a progressive rollout: the
 * real binary against a real server process.
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
  server = await spawnServer(data, ['--engine-interval', '200ms']);
  cli = (...args) => runCli(['--server', server.url, '--data', data, ...args]);
  expect(cli('devices', 'import', FIXTURE).code).toBe(0);
  const artifact = join(data, 'fw.bin');
  writeFileSync(artifact, 'pos firmware 2.4.0\n'.repeat(100));
  const upload = [
    '--name',
    'pos-fw',
    '--version',
    '2.4.0',
    '--hardware',
    'pos-x100',
    '--hardware',
    'pos-x200',
  ];
  expect(cli('artifact', 'upload', artifact, ...upload).code).toBe(0);
});
afterAll(async () => {
  await server.kill();
});

describe('fleetd deploy create from flags, and promote', () => {
  it('creates a progressive rollout from flags; promote starts its next phase now; mistakes are one line', () => {
    const flags = [
      '--release',
      'pos-fw@2.4.0',
      '--filter',
      'tag.region=northeast',
      '--strategy',
      'progressive',
    ];
    const phases = ['--initial', '34%', '--increment', '33%', '--interval', '1h', '--success-rate', '95'];
    const dry = cli('deploy', 'create', ...flags, ...phases, '--dry-run', '-o', 'json');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout) as { phases: Array<{ name: string; devices: number }> };
    expect(plan.phases.map((p) => p.devices)).toEqual([2, 1, 0]); // 34%, 67%, 100% of 3 devices

    const created = cli('deploy', 'create', ...flags, ...phases, '-o', 'json');
    expect(created.code).toBe(0);
    const r = JSON.parse(created.stdout) as { id: string; name: string; spec: { phases: unknown[] } };
    expect(r.name).toBe('pos-fw@2.4.0 progressive');
    expect(r.spec.phases).toEqual([
      expect.objectContaining({ percentage: 34, wait: '1h', success_rate: 95 }),
      expect.objectContaining({ percentage: 67, wait: '1h', success_rate: 95 }),
      expect.objectContaining({ percentage: 100, wait: '0s', success_rate: 95 }),
    ]);
    const promote = cli('deploy', 'promote', r.id);
    expect(promote.code).toBe(0);
    expect(JSON.parse(cli('deploy', 'show', r.id, '-o', 'json').stdout).current_phase).toBe(1);

    const both = cli('deploy', 'create', '-f', 'spec.yaml', ...flags);
    expect(both.code).not.toBe(0);
    expect(both.stderr.trim()).toBe(
      'fleetd: -f: give a spec file or the flags of a quick rollout (--release …), not both',
    );
    const odd = cli('deploy', 'create', '--release', 'pos-fw@2.4.0', '--interval', '1h');
    expect(odd.code).not.toBe(0);
    expect(odd.stderr.trim()).toBe('fleetd: --interval: only --strategy progressive takes it');
  }, 120_000);
});
