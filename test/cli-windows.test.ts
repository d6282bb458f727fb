/** `fleetd windows set | show | ls | rm`: the real binary against a real server process. */
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

describe('fleetd windows', () => {
  it("sets, shows, lists and removes a device's own windows", () => {
    const set = cli('windows', 'set', 'pos-seattle-001', '21:30-23:30', '06:00-07:00/sun');
    expect(set.stderr).toBe('');
    expect(set.stdout).toMatch(/^pos-seattle-001: 21:30-23:30, 06:00-07:00\/sun \(set by api:admin\)\n$/);
    const json = JSON.parse(cli('windows', 'show', 'pos-seattle-001', '--output', 'json').stdout);
    expect(json.windows.windows[1]).toEqual({
      start: '06:00',
      end: '07:00',
      days: ['sun'],
      timezone: 'device',
    });
    const ls = cli('windows', 'ls').stdout;
    expect(ls).toMatch(
      /^DEVICE\s+WINDOWS\s+SOURCE\s+UPDATED\npos-seattle-001\s+21:30-23:30, 06:00-07:00\/sun\s+operator/,
    );
    expect(cli('windows', 'rm', 'pos-seattle-001').stdout).toBe('pos-seattle-001: windows removed\n');
  });

  it('sets, shows, lists and removes windows on a group and a tag value; show names the source', () => {
    expect(cli('groups', 'create', 'west', '--filter', 'tag.region = northwest').code).toBe(0);
    const group = cli('windows', 'set', '--group', 'west', '02:00-04:00');
    expect(group.stderr).toBe('');
    expect(group.stdout).toBe('group west: 02:00-04:00 (set by api:admin)\n');
    const tag = cli('windows', 'set', '--tag', 'store_type=standard', '21:30-23:30', '--timezone', 'UTC');
    expect(tag.stdout).toBe('tag store_type=standard: 21:30-23:30 UTC (set by api:admin)\n');
    expect(cli('windows', 'show', 'pos-seattle-001').stdout).toBe(
      'pos-seattle-001: no windows of its own\nsource: group west: 02:00-04:00\n',
    );
    expect(cli('windows', 'show', '--tag', 'store_type=standard').stdout).toMatch(
      /^tag store_type=standard: /,
    );
    expect(cli('windows', 'ls', '--groups').stdout).toMatch(
      /^GROUP\s+WINDOWS\s+SET BY\s+UPDATED\nwest\s+02:00-04:00\s+api:admin/,
    );
    expect(cli('windows', 'ls', '--tags').stdout).toMatch(
      /\nstore_type=standard\s+21:30-23:30 UTC\s+api:admin/,
    );
    expect(cli('windows', 'rm', '--group', 'west').stdout).toBe('group west: windows removed\n');
    expect(cli('windows', 'show', 'pos-seattle-001').stdout).toMatch(
      /\nsource: tag store_type=standard: 21:30-23:30 UTC\n$/,
    );
    expect(cli('windows', 'rm', '--tag', 'store_type=standard').code).toBe(0);
    expect(cli('windows', 'show', 'pos-seattle-001').stdout).toMatch(/\nsource: fallback/);
    const both = cli('windows', 'show', 'pos-seattle-001', '--group', 'west');
    expect(both.code).toBe(1);
    expect(both.stderr).toBe(
      'fleetd: windows show: give one of a device id, --group NAME or --tag KEY=VALUE\n',
    );
    const unknown = cli('windows', 'set', '--group', 'nowhere', '02:00-04:00');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^fleetd: group nowhere does not exist.*\n$/);
  }, 120_000);

  it('a mistake is one line and a non-zero exit', () => {
    const word = cli('windows', 'set', 'pos-seattle-001', '2am-4am');
    expect(word.code).toBe(1);
    expect(word.stderr).toBe(
      'fleetd: windows set: "2am-4am" must be HH:MM-HH:MM, optionally /days, e.g. 22:00-02:00/sat,sun\n',
    );
    const zone = cli('windows', 'set', 'pos-seattle-001', '02:00-04:00', '--timezone', 'Mars/Olympus');
    expect(zone.code).toBe(1);
    expect(zone.stderr).toMatch(
      /^fleetd: windows\[0\]\.timezone: "Mars\/Olympus" is not an IANA time zone.*\n$/,
    );
  });
});
