/**
 * The approval queue as an operator runs it: `fleetd server --enrollment approve` as a real process, devices asking
 * to join without a token (each with its own request secret), `fleetd devices pending`, `accept --filter` and
 * `reject` by id, and pre-authorisation through `fleetd devices import`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;
const cli = (...args: string[]) => runCli(['--server', server.url, '--data', data, ...args]);

const ask = (id: string, hardware: string) =>
  fetch(`${server.url}/api/device/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      device_id: id,
      hardware_type: hardware,
      request_secret: `secret-of-${id}-0123456789abcdef`,
    }),
  });

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, ['--no-mqtt', '--enrollment', 'approve']);
});
afterAll(async () => {
  await server.kill();
});

it('lists the queue, accepts by filter, rejects by id, and reports a bad id without failing the others', async () => {
  for (const [id, hw] of [
    ['pos-1', 'pos-x200'],
    ['pos-2', 'pos-x200'],
    ['kiosk-1', 'kiosk'],
  ] as const) {
    expect((await ask(id, hw)).status).toBe(202);
  }
  const pending = cli('devices', 'pending');
  expect(pending.code).toBe(0);
  expect(pending.stdout).toMatch(/^ID\s+NAME\s+HARDWARE\s+ASKED\s+KEY FINGERPRINT\n/);
  expect(pending.stdout.trim().split('\n')).toHaveLength(4);

  const accepted = cli('devices', 'accept', '--filter', 'hardware = pos-x200');
  expect(accepted).toMatchObject({
    code: 0,
    stdout: 'pos-1: accepted\npos-2: accepted\n2 devices accepted\n',
  });
  expect((await ask('pos-1', 'pos-x200')).status).toBe(201);

  const rejected = cli('devices', 'reject', 'kiosk-1', 'nobody');
  expect(rejected.code).not.toBe(0);
  expect(rejected.stdout).toBe('kiosk-1: rejected\n1 device rejected\n');
  expect(rejected.stderr).toContain('device nobody does not exist');
  expect((await ask('kiosk-1', 'kiosk')).status).toBe(403);
  expect(JSON.parse(cli('devices', 'pending', '--rejected', '-o', 'json').stdout).devices).toMatchObject([
    { device: { id: 'kiosk-1', admission: 'rejected' } },
  ]);
  const neither = cli('devices', 'accept');
  expect(neither.code).not.toBe(0);
  expect(neither.stderr.trim()).toBe('fleetd: devices accept: give device ids or --filter, one of the two');
});

it('pre-authorises the ids an import file marks, and accepts one already waiting', async () => {
  expect((await ask('till-2', 'pos-x200')).status).toBe(202);
  const file = join(tempDir('fleetd-import-'), 'fleet.json');
  writeFileSync(
    file,
    JSON.stringify({
      devices: [
        { id: 'till-1', preauthorized: true },
        { id: 'till-2', preauthorized: true },
      ],
    }),
  );
  expect(cli('devices', 'import', file).code).toBe(0);
  expect((await ask('till-1', 'pos-x200')).status).toBe(201);
  expect((await ask('till-2', 'pos-x200')).status).toBe(201);
});
