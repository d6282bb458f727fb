/**
 * `fleetd devices import` is all-or-nothing whatever the file's size: the real CLI against a real server, on
 * SQLite and on PostgreSQL.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { forEachDatabase } from './support/stores.js';

const COUNT = 12_000;

function fleetFile(badAt?: number): string {
  const devices = Array.from({ length: COUNT }, (_, i) => ({
    id: `dev-${i}`,
    hardware_type: 'hw-a',
    timezone: i === badAt ? 'Mars/Base' : 'Europe/Berlin',
    tags: { site: `s${i % 7}` },
  }));
  const file = join(tempDir(), badAt === undefined ? 'good.json' : 'bad.json');
  writeFileSync(file, JSON.stringify({ now: '2026-01-01T00:00:00Z', devices }));
  return file;
}

forEachDatabase((database) => {
  let server: ServerProcess;
  let cli: (...args: string[]) => ReturnType<typeof runCli>;
  beforeAll(async () => {
    const db = await database.fresh();
    const data = tempDir();
    server = await spawnServer(data, ['--no-mqtt', '--log-level', 'warn', ...(db ? ['--db', db] : [])]);
    cli = (...args) => runCli(['--server', server.url, '--data', data, ...args]);
  });
  afterAll(async () => {
    await server.kill();
  });

  const total = () => JSON.parse(cli('fleet', 'stats', '--output', 'json').stdout).total as number;

  it('a file of 12,000 devices with one bad time zone at #11,000 imports nothing and names devices[11000]', () => {
    const r = cli('devices', 'import', fleetFile(11_000));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^fleetd: .*bad\.json: devices\[11000\]\.timezone: "Mars\/Base" is not an IANA time zone \(e.g. Europe\/Berlin\); nothing was imported\n$/,
    );
    expect(total()).toBe(0);
  }, 120_000);

  it('a schema mistake deep in the file is named by its index in the file too', () => {
    const file = join(tempDir(), 'long-name.json');
    const devices = Array.from({ length: COUNT }, (_, i) => ({
      id: `dev-${i}`,
      ...(i === 10_500 ? { colour: 'red' } : {}),
    }));
    writeFileSync(file, JSON.stringify({ devices }));
    const r = cli('devices', 'import', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/devices\[10500\]: unknown field "colour"; nothing was imported\n$/);
    expect(total()).toBe(0);
  }, 120_000);

  it('the same file without the mistake imports all 12,000 devices', () => {
    const r = cli('devices', 'import', fleetFile());
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^imported 12000 devices: 12000 new, 0 updated\n$/);
    expect(total()).toBe(COUNT);
  }, 120_000);
});
