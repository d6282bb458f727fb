/**
 * `fleetd devices provision` as a user runs it against a real server process; the bundles it writes are
 * unpacked with the real `tar` command and read back by the agent's own bundle reader.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle } from '../src/agent/bundle.js';
import { initRoot } from '../src/artifacts/tuf/tuf-root.js';
import { type Operator, operator } from './support/fleet.js';
import { opensslCa } from './support/openssl-ca.js';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;
let op: Operator;
let caFile: string;
const DEVICE_SERVER = 'https://fleet.example.com:8443';

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, ['--log-level', 'warn']);
  op = operator(server.url, data);
  caFile = join(opensslCa('FleetD CA').dir, 'ca.pem');
});

afterAll(async () => {
  await server.kill();
});

const provision = (args: string[]) =>
  runCli([
    '--server',
    server.url,
    '--data',
    data,
    'devices',
    'provision',
    ...args,
    '--device-server',
    DEVICE_SERVER,
    '--ca',
    caFile,
  ]);

const tokens = async () =>
  (
    await op.call<{ tokens: Array<{ id: string; uses_left: number | null; claim: string | null }> }>(
      'GET',
      '/api/v1/enrollment-tokens',
    )
  ).body.tokens;

describe('fleetd devices provision', () => {
  it('writes a 0600 bundle that tar unpacks into config, CA, signing key, a 0600 one-use token and a systemd unit', async () => {
    const out = join(tempDir(), 'pos-001.tar.gz');
    const r = provision(['pos-001', '--hardware', 'pos-x200', '--out', out]);
    expect(r.stderr).not.toMatch(/fleetd:/);
    expect(r.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);

    const listing = execFileSync('tar', ['-tvzf', out], { encoding: 'utf8' });
    const modes = Object.fromEntries(
      listing
        .trim()
        .split('\n')
        .map((line) => {
          const cells = line.trim().split(/\s+/);
          return [cells.at(-1)!, cells[0]!];
        }),
    );
    expect(modes).toEqual({
      'agent.json': '-rw-r--r--',
      'ca.pem': '-rw-r--r--',
      'signing.pub': '-rw-r--r--',
      'enroll-token': '-rw-------',
      'fleetd-agent.service': '-rw-r--r--',
    });

    const dir = tempDir();
    execFileSync('tar', ['-xzf', out, '-C', dir]);
    expect(statSync(join(dir, 'enroll-token')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'agent.json'), 'utf8'))).toEqual({
      server: DEVICE_SERVER,
      device_id: 'pos-001',
      hardware_type: 'pos-x200',
      state_dir: '/var/lib/fleetd-agent',
    });
    expect(readFileSync(join(dir, 'ca.pem'), 'utf8')).toBe(readFileSync(caFile, 'utf8'));
    const keys = await op.call<{ keys: Array<{ public_key: string }> }>('GET', '/api/v1/keys');
    expect(readFileSync(join(dir, 'signing.pub'), 'utf8')).toBe(keys.body.keys[0]!.public_key);
    expect(readFileSync(join(dir, 'fleetd-agent.service'), 'utf8')).toContain(
      'ExecStart=/usr/local/bin/fleetd agent --bundle /etc/fleetd/bundle.tar.gz',
    );
    // The token is a real one: one use, claim limited to this id; nothing of it on stdout.
    const token = readFileSync(join(dir, 'enroll-token'), 'utf8').trim();
    expect(token).toMatch(/^fld_enroll_/);
    expect(r.stdout + r.stderr).not.toContain(token);
    const made = (await tokens()).find((t) => t.claim === 'id = "pos-001"');
    expect(made?.uses_left).toBe(1);

    // The agent reads what the CLI wrote.
    const bundle = await readBundle(out);
    expect(bundle.enrollToken).toBe(token);
    expect(bundle.config.device_id).toBe('pos-001');
  });

  it('from a CSV: a bundle per device, the hardware type taken from the registry when the CSV has none', async () => {
    await op.call('POST', '/api/v1/devices/import', {
      devices: [{ id: 'sign-7', hardware_type: 'signage-v2' }],
    });
    const dir = tempDir();
    const csv = join(dir, 'devices.csv');
    writeFileSync(csv, 'id,hardware\nsign-7,\nsign-8,signage-v3\n');
    const outDir = join(dir, 'bundles');
    mkdirSync(outDir);
    const r = runCli([
      '--server',
      server.url,
      '--data',
      data,
      '-o',
      'json',
      'devices',
      'provision',
      '--csv',
      csv,
      '--out-dir',
      outDir,
      '--device-server',
      DEVICE_SERVER,
      '--ca',
      caFile,
    ]);
    expect(r.code).toBe(0);
    expect(readdirSync(outDir).sort()).toEqual(['sign-7.tar.gz', 'sign-8.tar.gz']);
    expect((await readBundle(join(outDir, 'sign-7.tar.gz'))).config.hardware_type).toBe('signage-v2');
    expect((await readBundle(join(outDir, 'sign-8.tar.gz'))).config.hardware_type).toBe('signage-v3');
    expect(JSON.parse(r.stdout).bundles).toHaveLength(2);
  });

  it('a bad CSV row stops everything before the first token or file', async () => {
    const before = (await tokens()).length;
    const dir = tempDir();
    const csv = join(dir, 'devices.csv');
    writeFileSync(csv, 'id,hardware\nok-1,pos-x200\nok-1,pos-x200\n');
    const r = runCli([
      '--server',
      server.url,
      '--data',
      data,
      'devices',
      'provision',
      '--csv',
      csv,
      '--out-dir',
      dir,
      '--device-server',
      DEVICE_SERVER,
      '--ca',
      caFile,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('ok-1 is listed twice');
    expect(readdirSync(dir)).toEqual(['devices.csv']);
    expect((await tokens()).length).toBe(before);
  });

  it('carries the TUF root given with --tuf-root, the agent trust anchor; a file that is not a root stops it before any token', async () => {
    const ceremony = await initRoot({ out: tempDir('fleetd-tuf-'), threshold: 1, keys: 1, now: Date.now() });
    const out = join(tempDir(), 'tuf-001.tar.gz');
    const r = provision(['tuf-001', '--hardware', 'pos-x200', '--out', out, '--tuf-root', ceremony.rootFile]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readBundle(out)).tufRootJson).toBe(readFileSync(ceremony.rootFile, 'utf8'));

    const before = (await tokens()).length;
    const bad = provision([
      'tuf-002',
      '--hardware',
      'pos-x200',
      '--out',
      join(tempDir(), 'x.tar.gz'),
      '--tuf-root',
      caFile,
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toMatch(/^fleetd: --tuf-root: .* is not TUF root metadata/);
    expect((await tokens()).length).toBe(before);
  });

  it('refuses a plain http device server, an unknown device without --hardware, and an existing file', async () => {
    const dir = tempDir();
    const before = (await tokens()).length;
    const http = runCli([
      '--server',
      server.url,
      '--data',
      data,
      'devices',
      'provision',
      'pos-9',
      '--hardware',
      'x',
      '--out',
      join(dir, 'a.tar.gz'),
      '--ca',
      caFile,
    ]);
    expect(http.code).not.toBe(0);
    expect(http.stderr).toMatch(/not https: start the server with --tls auto/);
    const unknown = provision(['pos-unregistered', '--out', join(dir, 'b.tar.gz')]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no hardware type is registered for it; give --hardware/);
    writeFileSync(join(dir, 'c.tar.gz'), 'x');
    const exists = provision(['pos-9', '--hardware', 'x', '--out', join(dir, 'c.tar.gz')]);
    expect(exists.stderr).toMatch(/exists already/);
    expect(readdirSync(dir).sort()).toEqual(['c.tar.gz']);
    expect(existsSync(join(dir, 'a.tar.gz'))).toBe(false);
    expect((await tokens()).length).toBe(before);
  });
});

describe('readBundle', () => {
  it('takes only the known regular files: a path that climbs out or a link is not unpacked', async () => {
    const dir = tempDir();
    const inside = join(dir, 'in');
    mkdirSync(inside);
    writeFileSync(
      join(inside, 'agent.json'),
      JSON.stringify({ server: DEVICE_SERVER, device_id: 'd', hardware_type: 'h' }),
    );
    writeFileSync(join(inside, 'ca.pem'), readFileSync(caFile));
    writeFileSync(join(inside, 'signing.pub'), 'key');
    execFileSync('ln', ['-s', '/etc/passwd', join(inside, 'enroll-token')]);
    writeFileSync(join(dir, 'evil'), 'x');
    const file = join(dir, 'b.tar.gz');
    // GNU tar keeps "../evil" as written with -P.
    execFileSync('tar', [
      '-czPf',
      file,
      '-C',
      inside,
      'agent.json',
      'ca.pem',
      'signing.pub',
      'enroll-token',
      '../evil',
    ]);
    const bundle = await readBundle(file);
    expect(bundle.enrollToken).toBeUndefined(); // the link was not followed
    expect(bundle.config.state_dir).toBe('/var/lib/fleetd-agent');
    await expect(readBundle(join(dir, 'evil'))).rejects.toThrow(/not a provisioning bundle/);
  });
});
