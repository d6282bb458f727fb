/** `fleetd groups …`: the real binary against an in-process server listening on a port (cheaper than a process). */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';
import { FLEETD } from './support/processes.js';

let t: TestApp;
let url: string;

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    [FLEETD, '--server', url, '--token', t.adminToken, '--data', t.dataDir, ...args],
    { env: { ...process.env, FLEETD_SERVER: '', FLEETD_TOKEN: '' } },
  );
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

beforeAll(async () => {
  t = await testApp();
  await t.store.importDevices(
    [{ id: 'w1', tags: { region: 'west' } }, { id: 'w2', tags: { region: 'west' } }, { id: 'e1' }],
    { now: t.clock.now(), thresholds: { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 } },
    'test',
  );
  url = await t.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await t.close();
});

describe('fleetd groups', () => {
  // Six runs of the binary: generous for a loaded CI machine, a couple of seconds otherwise.
  it('creates, fills, lists, shows and removes groups; a bad id fails the command, not its neighbours', {
    timeout: 60_000,
  }, async () => {
    expect((await cli('groups', 'create', 'pilots', '--description', 'first wave')).stdout).toBe(
      'group pilots (static): 0 device(s)\n',
    );
    const add = await cli('groups', 'add', 'pilots', 'w1', 'ghost', 'e1');
    expect([add.code, add.stdout]).toEqual([1, 'w1: added\nghost: device ghost does not exist\ne1: added\n']);
    expect((await cli('groups', 'create', 'west', '--filter', 'tag.region = west')).stdout).toBe(
      'group west (dynamic): 2 device(s)\n',
    );
    const ls = await cli('groups', 'ls');
    expect(ls.stdout).toMatch(
      /^NAME\s+KIND\s+MEMBERS\s+FILTER\s+DESCRIPTION\s*\npilots\s+static\s+2\s+-?\s*first wave\s*\nwest\s+dynamic\s+2\s+tag\.region = west/,
    );
    const show = await cli('groups', 'show', 'pilots');
    expect(show.stdout).toContain('members      2\n');
    expect(show.stdout).toContain('\ne1\nw1\n');
    expect((await cli('groups', 'rm', 'pilots')).stdout).toBe('deleted group pilots\n');
  });
});
