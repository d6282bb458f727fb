/**
 * A health gate with real agents (docs/health-gates.md): a real server process and two real agent processes,
 * each counting its application's crashes in a crash file as a supervisor's `ExecStopPost=` would. The canary's
 * update installs and succeeds; then its application starts crashing. Its next heartbeats report the crashes
 * since the install, the gate counts the device as failed ("rebooted or crashed over the limit"), the rollout
 * halts before the second phase, and `rollback_on_halt` puts the canary back on the release it had. The other
 * device's update, waiting for the second phase, is cancelled without having started.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Agent, activeVersion, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { operator } from './support/fleet.js';
import { type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess | undefined;
const agents: Agent[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill('SIGKILL')));
  await server?.kill();
});

const WAIT = { timeoutMs: 90_000, intervalMs: 250 };

describe('a health gate with real agents', () => {
  it('halts and rolls back a canary whose application crashes after the update', async () => {
    const data = tempDir();
    server = await spawnServer(data, [
      '--heartbeat-interval',
      '1s',
      '--engine-interval',
      '200ms',
      '--log-level',
      'warn',
    ]);
    const op = operator(server.url, data);
    for (const version of ['1.0.0', '2.0.0']) {
      await op.upload(
        `name=gate-fw&version=${version}&hardware=gate`,
        Buffer.alloc(50_000, `gate ${version} `),
      );
    }
    const devices = ['gate-1', 'gate-2'];
    const states = new Map<string, string>();
    const crashFiles = new Map<string, string>();
    for (const id of devices) {
      crashFiles.set(id, join(tempDir(), 'crashes'));
      const agent = await startAgent(op, id, {
        hardware: 'gate',
        firmware: '0.9.0',
        flags: ['--app-crash-file', crashFiles.get(id)!],
        online: WAIT,
      });
      agents.push(agent);
      states.set(id, agent.stateDir);
    }
    // Both run 1.0.0 first, so that a rollback has a release to return to.
    const base = await op.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
      release: 'gate-fw@1.0.0',
      devices,
    });
    for (const u of base.body.assigned)
      expect((await op.waitForUpdate(u.id, ['succeeded', 'failed'])).state).toBe('succeeded');

    const created = await op.call<{ id: string }>('POST', '/api/v1/rollouts', {
      name: 'gate 2.0.0',
      release: 'gate-fw@2.0.0',
      filter: 'id=gate-*',
      strategy: 'progressive',
      rollback_on_halt: true,
      phases: [
        { name: 'canary', percentage: 50, success_rate: 100, health: { soak: '10m', max_app_crashes: 2 } },
        { name: 'full', percentage: 100 },
      ],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;

    // The canary installs 2.0.0 and reports success; the gate keeps the phase open while it soaks.
    let canary = '';
    await eventually(
      'the canary to succeed',
      async () => {
        const { body } = await op.call<{ updates: Array<{ device_id: string; state: string }> }>(
          'GET',
          `/api/v1/rollouts/${id}/updates?limit=10`,
        );
        const done = body.updates.find((u) => u.state === 'succeeded');
        canary = done?.device_id ?? '';
        return done !== undefined;
      },
      WAIT,
    );
    expect(activeVersion(states.get(canary)!)).toBe('2.0.0');
    expect((await op.call<{ state: string }>('GET', `/api/v1/rollouts/${id}`)).body.state).toBe('running');

    // Its application now crashes: the supervisor's count reaches 5, over the gate's limit of 2.
    writeFileSync(crashFiles.get(canary)!, '5\n');
    const halted = await eventually(
      'the rollout to halt and roll back',
      async () => {
        const r = (await op.call<{ state: string; reason: string | null }>('GET', `/api/v1/rollouts/${id}`))
          .body;
        if (r.state === 'halted' || r.state === 'rolled_back') return r;
        throw new Error(`still ${JSON.stringify(r).slice(0, 500)}`);
      },
      WAIT,
    );
    expect(halted.reason).toMatch(/rebooted or crashed over the limit/);
    await eventually(
      'the canary back on 1.0.0',
      async () => activeVersion(states.get(canary)!) === '1.0.0',
      WAIT,
    );
    const other = devices.find((d) => d !== canary)!;
    expect(activeVersion(states.get(other)!)).toBe('1.0.0');
    // Its update, waiting for the second phase, never started: the halt cancelled it.
    const { body } = await op.call<{
      updates: Array<{ device_id: string; state: string; error: string | null }>;
    }>('GET', `/api/v1/rollouts/${id}/updates?limit=10`);
    expect(body.updates.filter((u) => u.device_id === other).map((u) => [u.state, u.error])).toEqual([
      ['cancelled', 'rollout halted and rolled back'],
    ]);
  }, 240_000);
});
