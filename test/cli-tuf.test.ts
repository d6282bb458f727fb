/**
 * `fleetd keys root init|next|sign`: the offline TUF root ceremony and a k-of-n rotation, files only; and
 * `fleetd keys rotate ROLE` against a real server: the next root names the server's new key, and once signed and
 * installed the server signs with it.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initRoot, readRootFile, signRoot } from '../src/artifacts/tuf/tuf-root.js';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { tufDataFolder } from './support/tuf.js';

let server: ServerProcess | undefined;
// The rotation test's fleet, which the offline targets test continues.
let fleet: { dir: string; env: Record<string, string>; rootKeyFiles: string[] } | undefined;
afterAll(async () => {
  await server?.kill();
});

describe('fleetd keys root', () => {
  it('makes a 2-of-3 root, then a rotation to new keys signed by a threshold of old and new', () => {
    const dir = tempDir('fleetd-cli-tuf-');
    const init = runCli(['keys', 'root', 'init', '--threshold', '2', '--keys', '3', '--out', dir]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('version 1, 2 of 3 root keys must sign');
    expect(statSync(join(dir, 'root-keys', 'root-1.key')).mode & 0o777).toBe(0o600);
    const one = JSON.parse(readFileSync(join(dir, '1.root.json'), 'utf8'));
    expect(one.signed.roles.root).toMatchObject({ threshold: 2 });
    expect(Object.keys(one.signatures)).toHaveLength(3);

    const fresh = tempDir('fleetd-cli-tuf-new-');
    expect(runCli(['keys', 'generate', '--out', fresh]).code).toBe(0);
    const next = runCli([
      'keys',
      'root',
      'next',
      join(dir, '1.root.json'),
      '--out',
      join(dir, '2.root.json'),
      '--root-key',
      join(fresh, 'signing.key'),
      '--threshold',
      '1',
    ]);
    expect(next.code, next.stderr).toBe(0);
    const sign = (...keys: string[]) =>
      runCli([
        'keys',
        'root',
        'sign',
        join(dir, '2.root.json'),
        '--previous',
        join(dir, '1.root.json'),
        ...keys.flatMap((k) => ['--key', k]),
      ]);
    const first = sign(join(dir, 'root-keys', 'root-1.key'));
    expect(first.stdout).toMatch(/not ready yet: .*threshold of the current root/);
    const second = sign(join(dir, 'root-keys', 'root-3.key'), join(fresh, 'signing.key'));
    expect(second.stdout).toContain('3 signature(s); the thresholds are met');
  });

  it('refuses a threshold larger than the number of keys', () => {
    const r = runCli(['keys', 'root', 'init', '--threshold', '4', '--keys', '3', '--out', tempDir()]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--threshold must be from 1 to the number of keys, 3 (got 4)');
  });

  it('sends a root rotation to the offline flow: `keys rotate root` is refused with the command to use', () => {
    const r = runCli(['keys', 'rotate', 'root', '--out', join(tempDir(), '2.root.json')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('root keys rotate offline: `fleetd keys root next');
  });
});

describe('fleetd keys rotate', () => {
  it('rotates the targets key through the next root, signed offline and installed', async () => {
    // The ceremony itself is the test above; here it is made in-process to keep to the CLI steps that matter.
    const dir = tempDir('fleetd-cli-tuf-rotate-');
    const ceremony = await initRoot({ out: dir, threshold: 2, keys: 3, now: Date.now() });
    const data = tufDataFolder(ceremony);
    server = await spawnServer(data, ['--log-level', 'warn']);
    const env = {
      FLEETD_SERVER: server.url,
      FLEETD_TOKEN: readFileSync(join(data, 'admin-token'), 'utf8').trim(),
    };
    const cli = (...args: string[]) => runCli(args, env);
    fleet = { dir, env, rootKeyFiles: ceremony.rootKeyFiles };

    const rotate = cli('-o', 'json', 'keys', 'rotate', 'targets', '--out', join(dir, '2.root.json'));
    expect(rotate.code, rotate.stderr).toBe(0);
    const made = JSON.parse(rotate.stdout) as { key_id: string; version: number };
    expect(made.version).toBe(2);
    const two = JSON.parse(readFileSync(join(dir, '2.root.json'), 'utf8'));
    expect(two.signed.roles.targets.keyids).toEqual([made.key_id]);
    expect(Object.keys(two.signatures)).toHaveLength(0);
    // The private half stays on the server.
    expect(existsSync(join(data, 'tuf', 'keys', 'targets.next.key'))).toBe(true);

    // The holders sign it offline (`fleetd keys root sign`, the test above), a threshold of two.
    const signed = await readRootFile(join(dir, '2.root.json'));
    await signRoot(signed, [ceremony.rootKeyFiles[0]!, ceremony.rootKeyFiles[2]!]);
    writeFileSync(join(dir, '2.root.json'), JSON.stringify(signed.toJSON()));
    const install = cli('keys', 'root', 'install', join(dir, '2.root.json'));
    expect(install.code, install.stderr).toBe(0);
    expect(install.stdout).toContain('the server trusts root version 2');

    const state = (await (
      await fetch(`${server.url}/api/v1/tuf`, { headers: { authorization: `Bearer ${env.FLEETD_TOKEN}` } })
    ).json()) as { keys: { targets: string } };
    expect(state.keys.targets).toBe(made.key_id);
    expect(existsSync(join(data, 'tuf', 'keys', 'targets.next.key'))).toBe(false);
    // What the server serves now is signed by the new key alone.
    const snapshot = JSON.parse(await (await fetch(`${server.url}/api/device/v1/tuf/timestamp.json`)).text())
      .signed.meta['snapshot.json'].version;
    const snap = await (await fetch(`${server.url}/api/device/v1/tuf/${snapshot}.snapshot.json`)).json();
    const targetsVersion = (snap as { signed: { meta: Record<string, { version: number }> } }).signed.meta[
      'targets.json'
    ]!.version;
    const targets = (await (
      await fetch(`${server.url}/api/device/v1/tuf/${targetsVersion}.targets.json`)
    ).json()) as { signatures: Array<{ keyid: string }> };
    expect(targets.signatures.map((x) => x.keyid)).toEqual([made.key_id]);
  });

  it('requires an offline CI targets key through the next root; `keys sign-targets` adds its signature', async () => {
    expect(fleet, 'the rotation test set the server up').toBeDefined();
    const { dir, env, rootKeyFiles } = fleet!;
    const cli = (...args: string[]) => runCli(args, env);
    const ci = tempDir('fleetd-cli-tuf-ci-');
    expect(cli('keys', 'generate', '--out', ci).code).toBe(0);
    const next = cli(
      'keys',
      'root',
      'next',
      join(dir, '2.root.json'),
      '--out',
      join(dir, '3.root.json'),
      '--offline-targets-key',
      join(ci, 'signing.key'),
    );
    expect(next.code, next.stderr).toBe(0);
    const three = await readRootFile(join(dir, '3.root.json'));
    expect(three.signed.roles.targets).toMatchObject({ threshold: 2 });
    await signRoot(three, rootKeyFiles.slice(0, 2));
    const installed = await fetch(`${env.FLEETD_SERVER}/api/v1/tuf/root`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.FLEETD_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(three.toJSON()),
    });
    expect(installed.status, await installed.clone().text()).toBe(201);

    const wrong = cli('keys', 'sign-targets', '--key', join(ci, 'signing.key'), '--expect', 'fw@9.9.9');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/lacks fw@9\.9\.9: nothing signed/);
    const signed = cli('keys', 'sign-targets', '--key', join(ci, 'signing.key'));
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toContain('the server holds 2 signature(s) on it');
  });
});
