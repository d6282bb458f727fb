/**
 * `fleetd keys delegate|delegations ls|sign-delegated|undelegate` against a real server process: the operator
 * delegates a product line to a team's public key, the team signs its role's metadata offline (refusing when an
 * expected release is missing), and mistakes (a bad key file, a bad pattern, an unknown role) are one line each.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initRoot } from '../src/artifacts/tuf/tuf-root.js';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { tufDataFolder } from './support/tuf.js';

let server: ServerProcess | undefined;
afterAll(async () => {
  await server?.kill();
});

const oneLine = (r: { code: number; stderr: string }, message: RegExp) => {
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
};

describe('fleetd keys delegate', () => {
  it('delegates a product line to a team, which signs its releases offline', async () => {
    const dir = tempDir('fleetd-cli-delegations-');
    const ceremony = await initRoot({ out: dir, threshold: 1, keys: 1, now: Date.now() });
    const data = tufDataFolder(ceremony);
    server = await spawnServer(data, ['--log-level', 'warn']);
    const env = {
      FLEETD_SERVER: server.url,
      FLEETD_TOKEN: readFileSync(join(data, 'admin-token'), 'utf8').trim(),
    };
    const cli = (...args: string[]) => runCli(args, env);
    const up = await fetch(
      `${server.url}/api/v1/artifacts?name=pos-firmware&version=2.3.0&hardware=pos-x200`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${env.FLEETD_TOKEN}`, 'content-type': 'application/octet-stream' },
        body: Buffer.from('pos firmware 2.3.0'),
      },
    );
    expect(up.status).toBe(201);

    const team = tempDir('fleetd-cli-team-');
    expect(cli('keys', 'generate', '--out', team).code).toBe(0);
    const notAKey = join(team, 'notes.txt');
    writeFileSync(notAKey, 'hello');
    const base = ['keys', 'delegate', 'pos', '--paths', 'pos-firmware@*'];
    oneLine(cli(...base, '--key', notAKey), /--key: .*notes\.txt is not an Ed25519 key in PEM/);
    oneLine(cli(...base, '--key', join(team, 'missing.pub')), /--key: cannot read .*missing\.pub \(ENOENT\)/);
    oneLine(
      cli('keys', 'delegate', 'pos', '--paths', 'pos/{a,b}', '--key', join(team, 'signing.pub')),
      /paths: "pos\/\{a,b\}" is not a pattern over name@version/,
    );

    const made = cli(...base, '--key', join(team, 'signing.pub'), '--terminating');
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain('delegated pos-firmware@* to pos (1 of 1 key(s), terminating)');
    expect(made.stdout).toContain('the team signs version 1 (1 target(s))');

    const ls = cli('keys', 'delegations', 'ls');
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^pos {2}paths pos-firmware@\* {2}1 of [0-9a-f]{16}… {2}terminating$/m);
    expect(ls.stdout).toContain("never signed; version 1 awaits the team's signature");

    oneLine(
      cli(
        'keys',
        'sign-delegated',
        'pos',
        '--key',
        join(team, 'signing.key'),
        '--expect',
        'pos-firmware@9.9.9',
      ),
      /pos version 1 lacks pos-firmware@9\.9\.9: nothing signed/,
    );
    const stranger = tempDir('fleetd-cli-stranger-');
    expect(cli('keys', 'generate', '--out', stranger).code).toBe(0);
    oneLine(
      cli('keys', 'sign-delegated', 'pos', '--key', join(stranger, 'signing.key')),
      /is not one of pos's keys/,
    );
    oneLine(
      cli('keys', 'sign-delegated', 'nope', '--key', join(team, 'signing.key')),
      /no delegated targets role nope/,
    );

    const signed = cli(
      'keys',
      'sign-delegated',
      'pos',
      '--key',
      join(team, 'signing.key'),
      '--expect',
      'pos-firmware@2.3.0',
    );
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toContain('signed pos version 1 (1 targets: pos-firmware@2.3.0)');
    expect(signed.stdout).toContain('1 of 1 signature(s): devices trust it from their next refresh');
    const json = JSON.parse(cli('-o', 'json', 'keys', 'delegations', 'ls').stdout) as {
      delegations: Array<{ signed_version: number; expires: string; awaiting_signature: boolean }>;
    };
    expect(json.delegations[0]).toMatchObject({ signed_version: 1, awaiting_signature: false });

    oneLine(cli('keys', 'undelegate', 'nope'), /no delegated targets role nope/);
    const removed = cli('keys', 'undelegate', 'pos');
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(
      "removed delegation pos: the server's targets key alone signs its releases now",
    );
    expect(cli('keys', 'delegations', 'ls').stdout.trim()).toBe('no delegations');
    // Each step is a CLI process of its own.
  }, 180_000);
});
