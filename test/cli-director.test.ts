/**
 * `fleetd keys director init|rotate|install` and `fleetd devices provision` with a director, against a real
 * server: the director's ceremony writes its own root and keys; its online key rotates through the director's
 * next root (signed with `fleetd keys root sign`), after which a device's director metadata is signed by the new
 * key; a provisioning bundle carries the director root the server trusts.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBundle } from '../src/agent/bundle.js';
import { opensslCa } from './support/openssl-ca.js';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess | undefined;
afterAll(async () => {
  await server?.kill();
});

describe('fleetd keys director', () => {
  it("makes the director's ceremony, rotates its timestamp key through its own root, and provisions its root", async () => {
    const dir = tempDir('fleetd-cli-director-');
    const init = runCli(['keys', 'director', 'init', '--threshold', '1', '--keys', '2', '--out', dir]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('director root version 1, 1 of 2 root keys must sign');
    expect(statSync(join(dir, 'root-keys', 'root-1.key')).mode & 0o777).toBe(0o600);

    const data = tempDir();
    mkdirSync(join(data, 'director', 'root'), { recursive: true });
    mkdirSync(join(data, 'director', 'keys'), { recursive: true });
    copyFileSync(join(dir, '1.root.json'), join(data, 'director', 'root', '1.root.json'));
    for (const role of ['targets', 'snapshot', 'timestamp']) {
      copyFileSync(join(dir, 'online', `${role}.key`), join(data, 'director', 'keys', `${role}.key`));
    }
    server = await spawnServer(data, ['--log-level', 'warn']);
    const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
    const env = { FLEETD_SERVER: server.url, FLEETD_TOKEN: token };
    const cli = (...args: string[]) => runCli(args, env);
    const api = async <T>(method: string, path: string, body?: unknown, auth = `Bearer ${token}`) => {
      const r = await fetch(`${server!.url}${path}`, {
        method,
        headers: {
          authorization: auth,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: r.status, body: (await r.json()) as T };
    };

    const rotate = cli(
      '-o',
      'json',
      'keys',
      'director',
      'rotate',
      'timestamp',
      '--out',
      join(dir, '2.root.json'),
    );
    expect(rotate.code, rotate.stderr).toBe(0);
    const made = JSON.parse(rotate.stdout) as { key_id: string; version: number };
    expect(made.version).toBe(2);
    expect(existsSync(join(data, 'director', 'keys', 'timestamp.next.key'))).toBe(true);
    // Not signed yet: refused as a device would refuse it.
    const unsigned = cli('keys', 'director', 'install', join(dir, '2.root.json'));
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.stderr).toMatch(/not signed by a threshold/);
    const sign = cli(
      'keys',
      'root',
      'sign',
      join(dir, '2.root.json'),
      '--previous',
      join(dir, '1.root.json'),
      '--key',
      join(dir, 'root-keys', 'root-1.key'),
    );
    expect(sign.code, sign.stderr).toBe(0);
    const install = cli('keys', 'director', 'install', join(dir, '2.root.json'));
    expect(install.code, install.stderr).toBe(0);
    expect(install.stdout).toContain('the server trusts director root version 2');

    const state = await api<{ root_version: number; keys: { timestamp: string } }>(
      'GET',
      '/api/v1/tuf/director',
    );
    expect(state.body).toMatchObject({ root_version: 2, keys: { timestamp: made.key_id } });
    // A device's director timestamp is signed by the new key alone.
    await api('POST', '/api/v1/devices/import', { devices: [{ id: 'pos-1', hardware_type: 'pos-x200' }] });
    const credential = (await api<{ credential: string }>('POST', '/api/v1/devices/pos-1/credential')).body
      .credential;
    const timestamp = await api<{ signatures: Array<{ keyid: string }> }>(
      'GET',
      '/api/device/v1/director/timestamp.json',
      undefined,
      `Bearer ${credential}`,
    );
    expect(timestamp.status).toBe(200);
    expect(timestamp.body.signatures.map((s) => s.keyid)).toEqual([made.key_id]);
    // Without a device's credential: nothing.
    expect(
      (await api('GET', '/api/device/v1/director/timestamp.json', undefined, 'Bearer nope')).status,
    ).toBe(401);

    // A bundle carries the director root the server trusts now (version 2).
    const out = join(tempDir(), 'pos-1.tar.gz');
    const caFile = join(opensslCa('FleetD CA').dir, 'ca.pem');
    const provision = cli(
      'devices',
      'provision',
      'pos-1',
      '--hardware',
      'pos-x200',
      '--out',
      out,
      '--ca',
      caFile,
      '--device-server',
      'https://fleet.example.com',
    );
    expect(provision.code, provision.stderr).toBe(0);
    const bundle = await readBundle(out);
    expect(JSON.parse(bundle.directorRootJson ?? '{}').signed.version).toBe(2);
  }, 120_000);
});
