/**
 * Telemetry end to end: a real `fleetd agent` process reports its telemetry (with a custom metric from a command)
 * and its inventory (this machine's os-release, kernel and dpkg packages) to a real server process, and the CLI
 * shows them and filters devices by them.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Agent, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { freePort, runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let op: Operator;
let agent: Agent | undefined;

beforeAll(async () => {
  const data = tempDir();
  server = await spawnServer(data, [
    '--port',
    String(await freePort()),
    '--heartbeat-interval',
    '1s',
    '--log-level',
    'warn',
  ]);
  op = operator(server.url, data);
});

afterAll(async () => {
  await agent?.kill('SIGKILL');
  await server.kill();
});

it('an agent reports telemetry and inventory; the CLI shows them and filters by them', async () => {
  agent = await startAgent(op, 'tel-1', { flags: ['--metrics-cmd', 'echo queue_depth 7'], online: false });
  const cli = (...args: string[]) => runCli(['--server', server.url, ...args], { FLEETD_TOKEN: op.token });
  await eventually(
    'the agent to report its inventory',
    async () => {
      const r = await op.call('GET', '/api/v1/devices/tel-1/inventory');
      if (r.status !== 200) throw new Error(`inventory: ${r.status}; agent: ${agent?.output().slice(-500)}`);
      return true;
    },
    { timeoutMs: 20_000 },
  );

  const telemetry = cli('devices', 'telemetry', 'tel-1', '--output', 'json');
  expect(telemetry.code, telemetry.stderr).toBe(0);
  const latest = Object.fromEntries(
    (JSON.parse(telemetry.stdout) as { latest: Array<{ name: string; value: number }> }).latest.map((l) => [
      l.name,
      l.value,
    ]),
  );
  expect(latest.queue_depth).toBe(7);
  expect(latest.mem_used_pct).toBeGreaterThan(0);
  expect(latest.uptime_s).toBeGreaterThan(0);
  expect(latest.reboots).toBe(0);

  const inventory = cli('devices', 'inventory', 'tel-1', '--output', 'json');
  expect(inventory.code, inventory.stderr).toBe(0);
  const inv = JSON.parse(inventory.stdout) as {
    os: string;
    packages: Array<{ name: string; version: string }>;
  };
  expect(inv.os).toMatch(/Debian/);
  const dpkg = inv.packages.find((p) => p.name === 'dpkg');
  expect(dpkg).toBeDefined();
  expect(cli('devices', 'inventory', 'tel-1').stdout).toMatch(/^os: +Debian/m);

  const list = (filter: string) => {
    const r = cli('devices', 'ls', '--filter', filter, '--output', 'json');
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { devices: Array<{ id: string }> }).devices.map((d) => d.id);
  };
  expect(list('telemetry.queue_depth >= 7')).toEqual(['tel-1']);
  expect(list('telemetry.queue_depth < 7')).toEqual([]);
  expect(
    list(`inventory.package.dpkg = ${dpkg!.version.replace(/^\d+:/, '').replace(/-[^-]*$/, '')}`),
  ).toEqual(['tel-1']);
  expect(list(`inventory.os = "${inv.os}"`)).toEqual(['tel-1']);

  const missing = cli('devices', 'inventory', 'nope');
  expect(missing.code).not.toBe(0);
  expect(missing.stderr.trim().split('\n')).toHaveLength(1);
}, 60_000); // a real agent's start, enrollment and dpkg-query, then four CLI processes: 60 s on a busy 2-core machine
