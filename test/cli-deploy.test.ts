/** `fleetd deploy …`: the real binary against a real server process, devices reporting over HTTP. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpTransport, ProtocolDevice } from '../src/sim/protocol-device.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

const FIXTURE = join(import.meta.dirname, '../examples/pos-fleet.json');
let server: ServerProcess;
let data: string;
let op: Operator;
let cli: (...args: string[]) => ReturnType<typeof runCli>;
const devices = new Map<string, ProtocolDevice>();

function spec(name: string, text: string): string {
  const file = join(data, name);
  writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, ['--engine-interval', '200ms']);
  op = operator(server.url, data);
  cli = (...args) => runCli(['--server', server.url, '--data', data, ...args]);
  expect(cli('devices', 'import', FIXTURE).code).toBe(0);
  const artifact = join(data, 'fw.bin');
  writeFileSync(artifact, 'pos firmware 2.4.0\n'.repeat(100));
  expect(
    cli(
      'artifact',
      'upload',
      artifact,
      '--name',
      'pos-fw',
      '--version',
      '2.4.0',
      '--hardware',
      'pos-x100',
      '--hardware',
      'pos-x200',
    ).code,
  ).toBe(0);
  for (const id of ['pos-nyc-001', 'pos-nyc-002', 'pos-boston-001']) {
    const { body } = await op.call<{ credential: string }>('POST', `/api/v1/devices/${id}/credential`);
    devices.set(
      id,
      new ProtocolDevice(id, body.credential, httpTransport(server.url), '2.1.0', {
        outcome: () => ({ kind: 'succeed' }),
      }),
    );
  }
});
afterAll(async () => {
  await server.kill();
});

describe('fleetd deploy', () => {
  it('--dry-run prints the plan and creates nothing', () => {
    const file = spec(
      'canary.yaml',
      [
        'name: northeast canary',
        'release: pos-fw@2.4.0',
        'filter: "tag.region=northeast"',
        'strategy: progressive',
        'phases:',
        '  - { name: canary, percentage: 34, wait: 1h, success_rate: 95 }',
        '  - { name: rest, percentage: 100 }',
        'seed: 3',
      ].join('\n'),
    );
    const dry = cli('deploy', 'create', '-f', file, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^DRY RUN — nothing was created\./);
    expect(dry.stdout).toMatch(
      /progressive rollout "northeast canary" of pos-fw@2\.4\.0 to 3 devices: 2 online, 1 offline/,
    );
    // Seeds 000 and 001: a failed gate halts and rolls back, unless the spec says otherwise.
    expect(dry.stdout).toContain(
      'on a failed gate: halt and roll back every updated device to its previous version (rollback_on_halt: true)',
    );
    const keep = spec('keep.yaml', `${readFileSync(file, 'utf8')}\nrollback_on_halt: false\n`);
    expect(cli('deploy', 'create', '-f', keep, '--dry-run').stdout).toContain(
      'on a failed gate: halt, no rollback (rollback_on_halt: false)',
    );
    expect(dry.stdout).toMatch(/canary\s+34%\s+2\s+2\s+pos-nyc-00\d pos-nyc-00\d/);
    expect(dry.stdout).toMatch(/estimated finish/);
    expect(JSON.parse(cli('deploy', 'ls', '-o', 'json').stdout).rollouts).toEqual([]);
  });

  it('creates a rollout, shows it, and watch exits 0 once every device has reported', async () => {
    const file = spec(
      'now.yaml',
      'name: northeast now\nrelease: pos-fw@2.4.0\nfilter: tag.region=northeast\nstrategy: immediate\n',
    );
    const created = cli('deploy', 'create', '-f', file);
    expect(created.code).toBe(0);
    const id = /created (ro_\S+)/.exec(created.stdout)![1]!;
    expect(created.stdout).toMatch(/immediate rollout of pos-fw@2\.4\.0 to 3 devices — RUNNING/);
    for (const d of devices.values()) await d.connect();
    // The engine completes it on its next tick; watch then prints the final state and exits 0.
    await eventually(
      'the rollout to complete',
      () => JSON.parse(cli('deploy', 'show', id, '-o', 'json').stdout).state === 'completed',
      { timeoutMs: 30_000 },
    );
    const watch = cli('deploy', 'watch', id, '--interval', '0.2');
    expect(watch.code).toBe(0);
    expect(watch.stdout).toMatch(/COMPLETED/);
    expect(watch.stdout).toMatch(/ok 3\s+failed 0/);
    const ls = cli('deploy', 'ls').stdout;
    expect(ls).toMatch(
      new RegExp(
        `${id}\\s+northeast now\\s+immediate\\s+pos-fw@2\\.4\\.0\\s+completed\\s+all\\s+3/3\\s+100%`,
      ),
    );
    // No release of the versions they ran before is stored: the rollback says so and fails.
    const rollback = cli('deploy', 'rollback', id);
    expect(rollback.code).toBe(1);
    expect(rollback.stdout).toMatch(/0 devices returning to their previous version \(0 returned so far\)/);
    expect(rollback.stdout).toMatch(
      /3 devices cannot return to their previous version:\n {2}pos-\S+ {2}no release pos-fw@\S+ in the store/,
    );
    expect(rollback.stderr.trim()).toBe(
      `fleetd: rollback of ${id} incomplete: 3 devices cannot return to their previous version`,
    );
  }, 120_000);

  it('pause, resume and cancel answer with the new state; a refused command is one line and exit 1', () => {
    const file = spec(
      'later.yaml',
      'name: later\nrelease: pos-fw@2.4.0\nfilter: "tag.region=west"\nstrategy: immediate\n',
    );
    const id = /created (ro_\S+)/.exec(cli('deploy', 'create', '-f', file).stdout)![1]!;
    expect(cli('deploy', 'pause', id).stdout.trim()).toBe(`${id}: paused`);
    expect(cli('deploy', 'resume', id).stdout.trim()).toBe(`${id}: running`);
    expect(cli('deploy', 'cancel', id).stdout.trim()).toBe(`${id}: cancelled (cancelled by operator)`);
    // The header keeps the devices the rollout was to, and says they were cancelled.
    const shown = cli('deploy', 'show', id).stdout;
    expect(shown).toMatch(
      /immediate rollout of pos-fw@2\.4\.0 to ([1-9]\d*) devices \(\1 cancelled\) — CANCELLED/,
    );
    expect(shown).toMatch(/all\s+\[\s+\]\s+0\/([1-9]\d*)\s+ok 0 .*cancelled \1/);
    const again = cli('deploy', 'resume', id);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/rollout ro_\S+ is cancelled/);
    const watch = cli('deploy', 'watch', id);
    expect(watch.code).toBe(1);
    expect(watch.stderr.trim()).toBe(`fleetd: rollout ${id} cancelled: cancelled by operator`);
  }, 120_000); // a dozen runs of the CLI, each a process of its own

  it('a bad spec file is refused before anything is sent, naming the file and the field', () => {
    const file = spec(
      'bad.yaml',
      'name: x\nrelease: pos-fw@2.4.0\nfilter: ""\nstrategy: scheduled\nwindow: { start: "2am", end: "04:00" }\n',
    );
    const r = cli('deploy', 'create', '-f', file);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`fleetd: ${file}: window.start: must be a local time HH:MM such as 02:00`);
    const missing = cli('deploy', 'create', '-f', join(data, 'nope.yaml'));
    expect(missing.stderr.trim()).toBe(`fleetd: cannot read ${join(data, 'nope.yaml')}: ENOENT`);
  });
});
