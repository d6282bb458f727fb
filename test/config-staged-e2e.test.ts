/**
 * A staged configuration version end to end: a real server process, three real `fleetd agent`s with
 * `--config-hook`, and the CLI. A staged version reaches no device; released to a canary of one it is applied by
 * that agent alone while the others keep the current version; released to the rest and promoted, every agent
 * applies it. A next version the hook refuses is reported failed by the canary, shows in the staged version's
 * progress, and is dropped: the canary goes back to the current version and the others never left it. Rolled out
 * with a strategy (`config rollout`), the server releases a canary, then the rest, and promotes it by itself; a
 * refused version halts the rollout at the canary, and cancelling it sends the canary back.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import {
  type AgentProcess,
  runCli,
  type ServerProcess,
  spawnAgent,
  spawnServer,
  tempDir,
} from './support/processes.js';

const IDS = ['stg-1', 'stg-2', 'stg-3'];
let server: ServerProcess;
let data: string;
let op: Operator;
const agents: AgentProcess[] = [];
const marks = tempDir('fleetd-config-staged-');
const publicKeyFile = join(marks, 'signing.pub');
const cli = (...args: string[]) => {
  const r = runCli(['--server', server.url, '--data', data, ...args]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
};
const appliedFile = (id: string) => join(marks, `${id}.json`);

interface DeviceConfig {
  desired: { version: string; hash: string } | null;
  applied: { version: string; hash: string } | null;
  last_report: { result: string; hash: string; output: string | null } | null;
}

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, ['--heartbeat-interval', '1s', '--log-level', 'warn']);
  op = operator(server.url, data);
  await op.call('POST', '/api/v1/devices/import', {
    devices: IDS.map((id) => ({ id, tags: { lab: 'staged' } })),
  });
  const keys = await op.call<{ keys: Array<{ public_key: string }> }>('GET', '/api/v1/keys');
  writeFileSync(publicKeyFile, keys.body.keys[0]!.public_key);
});

afterAll(async () => {
  for (const agent of agents) await agent.kill('SIGKILL');
  await server?.kill();
});

function document(name: string, content: object): string {
  const file = join(marks, name);
  writeFileSync(file, JSON.stringify(content));
  return file;
}

/** Each device's configuration once its agent reported on what it should hold now. */
async function settled(): Promise<Map<string, DeviceConfig>> {
  return eventually(
    'every agent to report on its desired configuration',
    async () => {
      const states = new Map<string, DeviceConfig>();
      for (const id of IDS) {
        const s = (await op.call<DeviceConfig>('GET', `/api/v1/devices/${id}/config`)).body;
        if (s.desired === null || s.last_report?.hash !== s.desired.hash) {
          throw new Error(`${id}: ${JSON.stringify(s)}; ${agents.map((a) => a.output()).join('\n')}`);
        }
        states.set(id, s);
      }
      return states;
    },
    { timeoutMs: 30_000 },
  );
}

/** What each agent's hook last applied. */
const appliedContent = () =>
  IDS.map((id) => (existsSync(appliedFile(id)) ? JSON.parse(readFileSync(appliedFile(id), 'utf8')) : null));

it('applies a staged version to a canary first, then the rest; a refused one is dropped with the others untouched', async () => {
  cli('config', 'set', 'site', document('v1.json', { level: 'info' }), '--filter', 'tag.lab = staged');
  const enrollToken = (
    await op.call<{ token: string }>('POST', '/api/v1/enrollment-tokens', { claim: 'tag.lab = staged' })
  ).body.token;
  for (const id of IDS) {
    agents.push(
      spawnAgent([
        ...['--server', server.url, '--device-id', id, '--hardware', 'pos-x200'],
        ...['--state-dir', tempDir('fleetd-agent-'), '--enroll-token', enrollToken, '--firmware', '1.0.0'],
        ...['--public-key', publicKeyFile, '--no-telemetry'],
        '--config-hook',
        `if grep -q '"refuse": true' "$FLEETD_CONFIG_FILE"; then echo "refused" >&2; exit 3; fi; ` +
          `cp "$FLEETD_CONFIG_FILE" ${appliedFile(id)}`,
      ]),
    );
  }
  const versionsOf = (states: Map<string, DeviceConfig>) => IDS.map((id) => states.get(id)!.applied?.version);
  expect(versionsOf(await settled())).toEqual(['site@1', 'site@1', 'site@1']);

  // Staged: nobody changes.
  expect(
    cli(
      'config',
      'set',
      'site',
      document('v2.json', { level: 'debug' }),
      '-f',
      'tag.lab = staged',
      '--staged',
    ),
  ).toMatch(/^site: staged version 2 for tag.lab = staged/);
  expect(cli('config', 'ls')).toMatch(/site\s+1\s+2 \(0 released, 0 applied, 0 failed\)/);

  // A canary of one: the first device by id takes it, the others keep version 1.
  expect(cli('config', 'release', 'site', '2', '--count', '1')).toMatch(/^released to 1 more device\n/);
  await eventually(
    'the canary to apply version 2',
    async () => {
      const s = (await op.call<DeviceConfig>('GET', '/api/v1/devices/stg-1/config')).body;
      if (s.applied?.version !== 'site@2') throw new Error(`${JSON.stringify(s)}; ${agents[0]!.output()}`);
      return true;
    },
    { timeoutMs: 20_000 },
  );
  expect(versionsOf(await settled())).toEqual(['site@2', 'site@1', 'site@1']);
  expect(appliedContent()).toEqual([{ level: 'debug' }, { level: 'info' }, { level: 'info' }]);
  expect(cli('config', 'staged', 'site')).toMatch(/released to 1: 1 applied, 0 failed, 0 not reported yet/);

  // Then the rest, and promoted.
  expect(cli('config', 'release', 'site', '2')).toMatch(/^released to 2 more devices\n/);
  await eventually('every agent to apply version 2', async () => {
    const versions = versionsOf(await settled());
    if (!versions.every((v) => v === 'site@2')) throw new Error(versions.join(' '));
    return true;
  });
  expect(cli('config', 'promote', 'site', '2')).toMatch(/^site: version 2 for tag.lab = staged/);
  expect(appliedContent()).toEqual([{ level: 'debug' }, { level: 'debug' }, { level: 'debug' }]);

  // A version the hook refuses: the canary fails it, the staged version is dropped, the canary goes back.
  cli(
    'config',
    'set',
    'site',
    document('v3.json', { level: 'trace', refuse: true }),
    '-f',
    'tag.lab = staged',
    '--staged',
  );
  cli('config', 'release', 'site', '3', '--device', 'stg-1');
  await eventually('the canary to report version 3 failed', async () => {
    const out = cli('config', 'staged', 'site');
    if (!/released to 1: 0 applied, 1 failed/.test(out)) throw new Error(out);
    return true;
  });
  const failed = (await op.call<DeviceConfig>('GET', '/api/v1/devices/stg-1/config')).body;
  expect(failed).toMatchObject({ desired: { version: 'site@3' }, last_report: { result: 'failed' } });
  expect(failed.last_report?.output).toContain('refused');
  expect(cli('config', 'unstage', 'site')).toMatch(
    /^site: staged version 3 dropped; 1 device goes back to the current version/,
  );
  const back = await settled();
  expect(IDS.map((id) => back.get(id)!.desired?.version)).toEqual(['site@2', 'site@2', 'site@2']);
  expect(versionsOf(back)).toEqual(['site@2', 'site@2', 'site@2']);
  expect(appliedContent()).toEqual([{ level: 'debug' }, { level: 'debug' }, { level: 'debug' }]);
}, 150_000);

// Continues with the agents and the promoted version 2 of the test above.
it('rolls a staged version out by itself: a canary, then the rest, promoted; a refused one halts at the canary and is cancelled', async () => {
  const stage = (file: string, content: object) => {
    const out = cli('config', 'set', 'site', document(file, content), '-f', 'tag.lab = staged', '--staged');
    return /staged version (\d+)/.exec(out)![1]!;
  };
  const versionsOf = (states: Map<string, DeviceConfig>) => IDS.map((id) => states.get(id)!.applied?.version);
  const rolloutState = (state: string) =>
    eventually(`the configuration rollout to be ${state}`, async () => {
      const out = cli('config', 'rollouts', 'site');
      if (!out.includes(`: ${state}`)) throw new Error(out);
      return out;
    });

  const good = stage('v4.json', { level: 'warn' });
  expect(
    cli(
      'config',
      'rollout',
      'site',
      good,
      '--phases',
      '1,100%',
      '--interval',
      '1s',
      '--max-failure-rate',
      '0%',
      '--promote',
    ),
  ).toMatch(new RegExp(`^site version ${good}: running, phase 1 of 2 \\(1\\)`));
  const done = await rolloutState('completed');
  expect(done).toMatch(/promoted/);
  expect(done).toMatch(/\n1\s+1\s+.*\s1\s+1\s+0\s+0\n2\s+100%\s+.*\s2\s+2\s+0\s+0/);
  const promoted = await eventually('every agent to apply the promoted version', async () => {
    const states = await settled();
    if (!versionsOf(states).every((v) => v === `site@${good}`)) throw new Error(versionsOf(states).join(' '));
    return states;
  });
  expect(versionsOf(promoted)).toEqual(IDS.map(() => `site@${good}`));
  expect(cli('config', 'show', 'site')).toMatch(new RegExp(`^site: version ${good} `));

  const bad = stage('v5.json', { level: 'trace', refuse: true });
  cli('config', 'rollout', 'site', bad, '--phases', '1,100%', '--interval', '1s');
  const halted = await rolloutState('halted');
  expect(halted).toContain('1 of 1 devices failed');
  expect(cli('config', 'rollouts')).toMatch(/site\s+\d+\s+halted/);
  // Only the canary ever got it.
  const states = await settled();
  expect(IDS.map((id) => states.get(id)!.desired?.version)).toEqual([
    `site@${bad}`,
    `site@${good}`,
    `site@${good}`,
  ]);
  expect(cli('config', 'rollout-cancel', 'site')).toMatch(new RegExp(`^site version ${bad}: cancelled`));
  const back = await settled();
  expect(IDS.map((id) => back.get(id)!.desired?.version)).toEqual(IDS.map(() => `site@${good}`));
  expect(appliedContent()).toEqual(IDS.map(() => ({ level: 'warn' })));
}, 120_000);
