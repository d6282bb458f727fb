/**
 * Offline signing as a CI pipeline does it, with the real binary: generate a key, sign a manifest without the
 * server, verify it with openssl alone, upload to a server that trusts the key and keeps no key of its own,
 * then assign the release and see it offered.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;
const keys = tempDir('fleetd-keys-');
const work = tempDir('fleetd-ci-');

beforeAll(async () => {
  const generated = runCli(['keys', 'generate', '--out', keys]);
  expect(generated.stderr).toBe('');
  expect(generated.stdout).toMatch(/signing\.key \(private, mode 0600\).*key id [0-9a-f]{16}/);
  data = tempDir();
  server = await spawnServer(data, ['--no-server-signing', '--trusted-key', join(keys, 'signing.pub')]);
});
afterAll(async () => {
  await server.kill();
});

describe('offline signing with the CLI', () => {
  it('signs in CI, verifies with openssl, uploads to a server without a private key, and assigns', () => {
    const cli = (...args: string[]) => runCli(['--server', server.url, '--data', data, ...args]);
    const artifact = join(work, 'pos-fw-2.3.0.bin');
    writeFileSync(artifact, randomBytes(100_000));
    const signed = runCli([
      'artifact',
      'sign',
      artifact,
      '--key',
      join(keys, 'signing.key'),
      '--name',
      'pos-fw',
      '--version',
      '2.3.0',
      '--hardware',
      'pos-x200',
      '--out',
      work,
    ]);
    expect(signed.stderr).toBe('');
    const verified = execFileSync(
      'openssl',
      [
        'pkeyutl',
        '-verify',
        '-pubin',
        '-inkey',
        join(keys, 'signing.pub'),
        '-rawin',
        '-in',
        'manifest.json',
        '-sigfile',
        'manifest.sig',
      ],
      { cwd: work, encoding: 'utf8' },
    );
    expect(verified).toMatch(/Signature Verified Successfully/);

    // The server has no key of its own: an unsigned upload is refused with a clear line.
    const unsigned = cli(
      'artifact',
      'upload',
      artifact,
      '--name',
      'x',
      '--version',
      '1.0.0',
      '--hardware',
      'h',
    );
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toMatch(/^fleetd: this server does not sign releases/);

    const uploaded = cli(
      'artifact',
      'upload',
      artifact,
      '--manifest',
      join(work, 'manifest.json'),
      '--signature',
      join(work, 'manifest.sig'),
      '-o',
      'json',
    );
    expect(uploaded.stderr).toBe('');
    const release = JSON.parse(uploaded.stdout);
    expect(release.manifest).toBe(readFileSync(join(work, 'manifest.json'), 'utf8'));

    // A manifest edited after signing is refused.
    writeFileSync(join(work, 'edited.json'), release.manifest.replace('2.3.0', '2.3.1'));
    const edited = cli(
      'artifact',
      'upload',
      artifact,
      '--manifest',
      join(work, 'edited.json'),
      '--signature',
      join(work, 'manifest.sig'),
    );
    expect(edited.code).toBe(1);
    expect(edited.stderr).toMatch(/signature does not verify/);

    expect(cli('devices', 'import', join(import.meta.dirname, '../examples/pos-fleet.json')).code).toBe(0);
    const assigned = cli('deploy', 'assign', 'pos-fw@2.3.0', '--devices', 'pos-nyc-001', 'pos-chicago-001');
    expect(assigned.stdout).toMatch(/pos-nyc-001: assigned/);
    expect(assigned.stdout).toMatch(/pos-chicago-001: skipped — hardware pos-x100 is not one of pos-x200/);
    const updates = cli('deploy', 'updates', '--release', 'pos-fw@2.3.0');
    expect(updates.stdout).toMatch(/pos-nyc-001\s+pending/);
    const downloaded = join(work, 'downloaded.bin');
    expect(cli('artifact', 'download', 'pos-fw@2.3.0', '--out', downloaded).code).toBe(0);
    expect(readFileSync(downloaded).equals(readFileSync(artifact))).toBe(true);
    expect(cli('artifact', 'delete', 'pos-fw@2.3.0').stderr).toMatch(/in use by 1 device update/);
    // A dozen CLI processes one after another: on a busy two-core machine that alone can pass 30 s.
  }, 120_000);
});
