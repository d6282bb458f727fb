/**
 * `fleetd sim agents` end to end: a real server process, the real CLI running 20 agents over HTTP and 20
 * over the server's embedded MQTT broker. An update assigned to all of them must reach every one and end
 * succeeded, and the run, stopped with SIGTERM, must exit 0 with every heartbeat acknowledged.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { FLEETD, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

const COUNT = 20;
let server: ServerProcess;
let data: string;
let op: Operator;

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, ['--heartbeat-interval', '1s', '--log-level', 'warn']);
  op = operator(server.url, data);
  await op.upload('name=sim-fw&version=2.0.0&hardware=sim', randomBytes(64 * 1024));
});

afterAll(async () => {
  await server?.kill();
});

/** Runs `fleetd sim agents` until every agent has taken the update, then stops it the way an operator would. */
async function runAgents(prefix: string, extra: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(
    process.execPath,
    [
      ...[FLEETD, '--server', server.url, '--data', data, 'sim', 'agents'],
      ...['--count', String(COUNT), '--id-prefix', prefix, '--firmware', '1.0.0', '--duration', '5m'],
      ...['--summary-interval', '2s', ...extra],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const ids = Array.from({ length: COUNT }, (_, i) => `${prefix}${i}`);
    await eventually(
      'every agent to enrol',
      async () =>
        (await Promise.all(ids.map((id) => op.call('GET', `/api/v1/devices/${id}`)))).every(
          (r) => r.status === 200,
        ),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const assigned = await op.call<{ assigned: Array<{ id: string }>; skipped: unknown[] }>(
      'POST',
      '/api/v1/updates/assign',
      { release: 'sim-fw@2.0.0', devices: ids },
    );
    expect(assigned.body.skipped).toEqual([]);
    expect(assigned.body.assigned).toHaveLength(COUNT);
    for (const update of assigned.body.assigned) {
      const done = await op.waitForUpdate(update.id, ['succeeded', 'failed', 'rolled_back']);
      expect(done.state, output).toBe('succeeded');
    }
  } finally {
    child.kill('SIGTERM');
  }
  return { code: await exited, output };
}

describe('fleetd sim agents', () => {
  it('runs agents over HTTP that all take an assigned update', async () => {
    const run = await runAgents('http-', []);
    expect(run.code, run.output).toBe(0);
    const final = run.output.split('\n').find((l) => l.startsWith('final:'));
    expect(final, run.output).toMatch(/heartbeats (\d+) sent, \1 acknowledged \(\1 over HTTP\), 0 failed/);
  });

  it('runs agents over MQTT that all take an assigned update', async () => {
    const run = await runAgents('mqtt-', ['--mqtt', server.mqttUrl!]);
    expect(run.code, run.output).toBe(0);
    const final = run.output.split('\n').find((l) => l.startsWith('final:'));
    expect(final, run.output).toMatch(/heartbeats (\d+) sent, \1 acknowledged \(\d+ over HTTP\), 0 failed/);
    expect(final, run.output).toMatch(/reports \d+ sent/);
  });
});
