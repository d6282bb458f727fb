/** `fleetd connectivity set | ls | rm`: the real binary against a real server process. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

const FIXTURE = join(import.meta.dirname, '../examples/pos-fleet.json');
let server: ServerProcess;
let data: string;
let cli: (...args: string[]) => ReturnType<typeof runCli>;

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data);
  cli = (...args) => runCli(['--server', server.url, '--data', data, ...args]);
  expect(cli('devices', 'import', FIXTURE).stderr).toBe('');
});
afterAll(async () => {
  await server.kill();
});

describe('fleetd connectivity', () => {
  // Seven runs of the binary: more than the default 30 s on a busy machine.
  it('sets, lists and removes classes; the device shows its class', { timeout: 120_000 }, () => {
    const set = cli(
      'connectivity',
      'set',
      'big-terminals',
      '--hardware',
      'pos-x200',
      '--interval',
      '1h',
      '--offline-after',
      '3h',
      '--abandoned-after',
      '30d',
    );
    expect(set.stderr).toBe('');
    expect(set.stdout).toBe('big-terminals: hardware=pos-x200, every 1h, 6 devices\n');
    const flagship = ['--tag', 'store_type=flagship', '--interval', '30s', '--offline-after', '2m'];
    expect(cli('connectivity', 'set', 'flagships', ...flagship, '--abandoned-after', '1d').stderr).toBe('');
    expect(cli('connectivity', 'ls').stdout).toMatch(
      /^NAME\s+MATCH\s+INTERVAL\s+OFFLINE AFTER\s+ABANDONED AFTER\s+PRIORITY\s+DEVICES\nflagships\s+tag\.store_type=flagship\s+30s\s+2m\s+1d\s+0\s+\d+\nbig-terminals\s+hardware=pos-x200\s+1h\s+3h\s+30d\s+0\s+\d+\n$/,
    );
    const device = JSON.parse(cli('devices', 'show', 'pos-nyc-001', '--output', 'json').stdout);
    expect(device.connectivity_class?.name ?? device.device?.connectivity_class?.name).toBe('flagships');
    expect(cli('connectivity', 'rm', 'flagships').stdout).toBe('flagships: removed\n');
    expect(JSON.parse(cli('connectivity', 'ls', '--output', 'json').stdout).classes).toHaveLength(1);
  });

  it('a mistake is one line and a non-zero exit', { timeout: 60_000 }, () => {
    const times = ['--interval', '1m', '--offline-after', '5m', '--abandoned-after', '1d'];
    const two = cli('connectivity', 'set', 'x', '--hardware', 'a', '--group', 'b', ...times);
    expect(two.code).toBe(1);
    expect(two.stderr).toBe(
      'fleetd: connectivity set: give exactly one of --hardware, --tag KEY=VALUE or --group\n',
    );
    const order = cli(
      'connectivity',
      'set',
      'x',
      '--hardware',
      'a',
      '--interval',
      '1h',
      '--offline-after',
      '30m',
      '--abandoned-after',
      '1d',
    );
    expect(order.code).toBe(1);
    expect(order.stderr).toMatch(
      /^fleetd: offline_after must be longer than heartbeat_interval .*\(VALIDATION\)\n$/,
    );
    const missing = cli('connectivity', 'rm', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^fleetd: connectivity class nope does not exist.*\n$/);
  });
});
