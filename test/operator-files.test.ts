/**
 * The data folder's secrets, with real `fleetd` processes: files made 0600 even in a folder that already
 * exists, a warning when the folder is open to others, and local recovery of a lost admin token.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

let previousUmask: number;
beforeAll(() => {
  // The usual umask: files made without an explicit mode would be 0644.
  previousUmask = process.umask(0o022);
});
afterAll(() => {
  process.umask(previousUmask);
});

describe('data folder files', () => {
  let server: ServerProcess;
  let data: string;
  beforeAll(async () => {
    data = join(tempDir(), 'existing');
    mkdirSync(data);
    chmodSync(data, 0o755);
    server = await spawnServer(data, ['--no-mqtt']);
  });
  afterAll(async () => {
    await server.kill();
  });

  it('creates the database, its -wal and -shm, the admin token and the signing key 0600 in an existing folder', () => {
    for (const file of ['fleetd.db', 'fleetd.db-wal', 'fleetd.db-shm', 'admin-token', 'signing.key']) {
      expect(existsSync(join(data, file)), file).toBe(true);
      expect(mode(join(data, file)), file).toBe('600');
    }
  });

  it('warns at start that the folder is readable by others', () => {
    expect(server.output()).toMatch(
      /the data folder .*existing has mode 0755: other users may read its secrets/,
    );
  });

  it('does not warn when only its owner can read it', async () => {
    const closed = tempDir();
    const other = await spawnServer(closed, ['--no-mqtt']);
    await other.kill();
    expect(mode(closed)).toBe('700');
    expect(other.output()).not.toMatch(/other users may read/);
  });
});

describe('fleetd admin-token reset', () => {
  let server: ServerProcess;
  let data: string;
  beforeAll(async () => {
    data = tempDir();
    server = await spawnServer(data, ['--no-mqtt']);
  });
  afterAll(async () => {
    await server.kill();
  });

  it('recovers a deleted admin token while the server runs; the old one stops working', async () => {
    const file = join(data, 'admin-token');
    const old = readFileSync(file, 'utf8').trim();
    rmSync(file);
    const lockedOut = runCli(['--server', server.url, '--data', data, 'devices', 'ls']);
    expect(lockedOut.code).toBe(1);
    expect(lockedOut.stderr).toMatch(/no API token/);

    const reset = runCli(['--data', data, 'admin-token', 'reset']);
    expect(reset.stderr).toBe('');
    expect(reset.code).toBe(0);
    const token = readFileSync(file, 'utf8').trim();
    expect(token).toMatch(/^fld_admin_/);
    expect(token).not.toBe(old);
    expect(reset.stdout).toContain(token);
    expect(reset.stdout).toMatch(/1 old admin token\(s\) revoked/);
    expect(mode(file)).toBe('600');

    expect(runCli(['--server', server.url, '--data', data, 'devices', 'ls']).code).toBe(0);
    const withOld = runCli(['--server', server.url, '--token', old, 'devices', 'ls']);
    expect(withOld.code).toBe(1);
    expect(withOld.stderr).toMatch(/UNAUTHENTICATED/);
    const audit = runCli(['--server', server.url, '--data', data, 'events', 'ls', '--type', 'api_token.']);
    expect(audit.stdout).toMatch(/api_token\.replaced/);
  }, 120_000);

  it('a server started without its token file says how to make a new one', async () => {
    await server.kill();
    rmSync(join(data, 'admin-token'));
    server = await spawnServer(data, ['--no-mqtt']);
    expect(server.output()).toMatch(
      /admin-token is missing; make a new one with `fleetd admin-token reset --data DIR`/,
    );
  });

  it('refuses a folder that is not a FleetD data folder', () => {
    const r = runCli(['--data', join(tempDir(), 'nothing-here'), 'admin-token', 'reset']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fleetd: .*nothing-here is not a FleetD data folder/);
  });
});
