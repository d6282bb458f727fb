/** `fleetd users …` and `fleetd tokens …`: the real binary against a real server process. */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLEETD, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;

function cli(
  args: string[],
  options: { token?: string; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const auth = options.token === undefined ? [] : ['--token', options.token];
  const child = spawn(process.execPath, [FLEETD, '--server', server.url, '--data', data, ...auth, ...args], {
    env: { ...process.env, FLEETD_SERVER: '', FLEETD_TOKEN: '' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdin.end(options.stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data);
});
afterAll(async () => {
  await server.kill();
});

describe('fleetd users and tokens', () => {
  it('adds a user from a piped password, lists it without the hash, and disables it', async () => {
    const add = await cli(['users', 'add', 'ana', '--role', 'operator', '--scope', 'tag.region=west'], {
      stdin: 'correct horse battery staple\n',
    });
    expect(add.stderr).toBe('');
    expect(add.stdout).toBe('user ana (operator, scope tag.region=west)\n');
    const ls = await cli(['users', 'ls']);
    expect(ls.stdout).toMatch(/^NAME\s+ROLE\s+SCOPE.*\nana\s+operator\s+tag\.region=west/);
    expect(ls.stdout).not.toContain('argon2');
    expect((await cli(['users', 'disable', 'ana'])).stdout).toBe('user ana disabled\n');
    const again = await cli(['users', 'disable', 'ana']);
    expect([again.code, again.stderr]).toEqual([1, 'fleetd: user ana is disabled already (CONFLICT)\n']);
  });

  it('creates a scoped, expiring token shown once, which works as its role until revoked', async () => {
    const made = await cli([
      'tokens',
      'create',
      'ci',
      '--role',
      'viewer',
      '--scope',
      'tag.region=west',
      '--expires',
      '90d',
    ]);
    expect(made.stderr).toBe('');
    const id = /token (tok_[\w-]+)/.exec(made.stdout)![1]!;
    const secret = /secret \(shown once\): (\S+)/.exec(made.stdout)![1]!;
    expect(made.stdout).toContain('(viewer, scope tag.region=west, expires 20');

    const ls = await cli(['tokens', 'ls']);
    expect(ls.stdout).toContain(id);
    expect(ls.stdout).not.toContain(secret);

    expect((await cli(['devices', 'ls'], { token: secret })).code).toBe(0);
    const refused = await cli(['tokens', 'create', 'x', '--role', 'viewer'], { token: secret });
    expect([refused.code, refused.stderr]).toEqual([
      1,
      'fleetd: POST /api/v1/tokens needs the permission admin.tokens, which role viewer (token ci) does not have (FORBIDDEN)\n',
    ]);

    expect((await cli(['tokens', 'revoke', id])).stdout).toBe(`token ${id} "ci" revoked\n`);
    const after = await cli(['devices', 'ls'], { token: secret });
    expect([after.code, after.stderr]).toEqual([
      1,
      'fleetd: the API token is unknown or revoked (UNAUTHENTICATED)\n',
    ]);
  });
});
