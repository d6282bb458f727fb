/** The real `fleetd` binary against a real server process, as a person or a CI pipeline would use it. */
import { writeFileSync } from 'node:fs';
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
});
afterAll(async () => {
  await server.kill();
});

describe('fleetd CLI', () => {
  it('the first start prints the admin token, saved with mode 0600', async () => {
    expect(server.output()).toMatch(/Admin API token \(saved in .*admin-token, mode 0600\):\n\s+fld_admin_/);
    const { statSync } = await import('node:fs');
    expect(statSync(join(data, 'admin-token')).mode & 0o777).toBe(0o600);
  });

  it('imports the POS fleet and shows 6 online, 3 offline, 1 unknown', () => {
    const imported = cli('devices', 'import', FIXTURE);
    expect(imported.stderr).toBe('');
    expect(imported.stdout).toMatch(/imported 10 devices: 10 new, 0 updated/);
    const stats = cli('fleet', 'stats', '--output', 'json');
    expect(JSON.parse(stats.stdout).by_status).toMatchObject({ online: 6, offline: 3, unknown: 1 });
    const table = cli('fleet', 'stats').stdout;
    expect(table).toMatch(/online\s+6\s+60%/);
    expect(table).toMatch(/offline\s+3\s+30%/);
    expect(table).toMatch(/unknown\s+1\s+10%/);
  });

  it('lists devices by filter, as a table and as the API`s JSON', () => {
    const northeast = cli('devices', 'ls', '--filter', 'tag.region=northeast');
    expect(northeast.code).toBe(0);
    const rows = northeast.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^ID\s+NAME\s+STATUS\s+FIRMWARE/);
    expect(rows.slice(1).map((r) => r.split(/\s+/)[0])).toEqual([
      'pos-boston-001',
      'pos-nyc-001',
      'pos-nyc-002',
    ]);
    const older = JSON.parse(cli('devices', 'ls', '--filter', 'firmware < 2.2.0', '-o', 'json').stdout);
    expect(older.devices.map((d: { id: string }) => d.id)).toEqual([
      'pos-boston-001',
      'pos-chicago-001',
      'pos-denver-001',
      'pos-nyc-001',
      'pos-seattle-001',
    ]);
  });

  it('pages past the server page size up to --limit', () => {
    const r = cli('devices', 'ls', '--limit', '4');
    expect(r.stdout.trim().split('\n')).toHaveLength(5);
    expect(r.stderr).toMatch(/more devices match/);
  });

  it('shows and decommissions a device', () => {
    expect(cli('devices', 'show', 'pos-miami-001').stdout).toMatch(/status\s+offline/);
    expect(cli('devices', 'decommission', 'pos-miami-001').stdout).toMatch(/pos-miami-001 decommissioned/);
    expect(cli('devices', 'show', 'pos-miami-001').stdout).toMatch(/status\s+decommissioned/);
  });

  it('creates enrollment tokens and shows events', () => {
    const token = cli('enrollment', 'create', '--uses', '5', '--expires', '7d');
    expect(token.stdout.trim()).toMatch(/^fld_enroll_[\w-]{20,}$/);
    const events = cli('events', 'ls', '--type', 'enrollment.');
    expect(events.stdout).toMatch(/enrollment\.created/);
  });

  it('watches events as they happen', async () => {
    const { spawn } = await import('node:child_process');
    const { FLEETD } = await import('./support/processes.js');
    const watch = spawn(
      process.execPath,
      [
        FLEETD,
        '--server',
        server.url,
        '--data',
        data,
        'events',
        'watch',
        '--after',
        '0',
        '--type',
        'device.credential',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const seen = new Promise<void>((resolve) => {
      watch.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('pos-la-001')) resolve();
      });
    });
    // From the first event on, so the credential below is seen whenever the stream opens.
    expect(cli('devices', 'credential', 'pos-la-001').code).toBe(0);
    await seen;
    watch.kill();
    expect(out).toMatch(/device\.credential_issued\s+pos-la-001/);
  });

  it('bad input: one clear line on stderr and a non-zero exit', () => {
    const cases: Array<[string[], RegExp]> = [
      [['devices', 'ls', '--filter', 'firmware <'], /^fleetd: column 11: .*\(FILTER_SYNTAX\)\n$/],
      [
        ['devices', 'show', 'no-such-device'],
        /^fleetd: device no-such-device is not registered \(DEVICE_NOT_FOUND\)\n$/,
      ],
      [['devices', 'import', '/nonexistent.json'], /^fleetd: cannot read \/nonexistent\.json: ENOENT\n$/],
      [['devices', 'ls', '--limit', 'many'], /^fleetd: --limit: "many" is not a positive integer\n$/],
      [['enrollment', 'create', '--expires', 'soon'], /^fleetd: expires_in: "soon" is not a duration.*\n$/],
      [['fleet', 'stats', '-o', 'yaml'], /^fleetd: --output: "yaml" must be table or json\n$/],
    ];
    for (const [args, expected] of cases) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(expected);
    }
    const notJson = join(tempDir(), 'bad.json');
    writeFileSync(notJson, '{"devices": [');
    expect(cli('devices', 'import', notJson).stderr).toMatch(/^fleetd: .*bad\.json is not valid JSON/);
    const unreachable = runCli(['--server', 'http://127.0.0.1:65530', '--token', 'x', 'devices', 'ls']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(
      /^fleetd: cannot reach the FleetD server at http:\/\/127\.0\.0\.1:65530 \(ECONNREFUSED\)\n$/,
    );
    const wrongToken = runCli(['--server', server.url, '--token', 'fld_admin_wrong', 'devices', 'ls']);
    expect(wrongToken.stderr).toMatch(/^fleetd: the API token is unknown or revoked \(UNAUTHENTICATED\)\n$/);
    const usage = cli('devices', 'frobnicate');
    expect(usage.code).toBe(2);
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
  });
});
