/**
 * A real `fleetd server` process: `fleetd artifact verify` finds a damaged stored artifact, and an upload the
 * client cuts off is logged quietly (not as an unhandled error) and leaves no temp file.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../src/artifacts/blob-store.js';
import { eventually } from './support/eventually.js';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;
let cli: (...args: string[]) => ReturnType<typeof runCli>;

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, ['--no-mqtt']);
  cli = (...args) => runCli(['--server', server.url, '--data', data, ...args]);
});
afterAll(async () => {
  await server.kill();
});

describe('fleetd artifact verify and repair', () => {
  // Six CLI processes, each a Node start: slow on a busy machine.
  it('says all is intact, then names the damaged artifact and exits 1; repair puts it right', () => {
    const file = join(data, 'fw.bin');
    writeFileSync(file, randomBytes(40_000));
    const up = cli(
      'artifact',
      'upload',
      file,
      '--name',
      'fw',
      '--version',
      '1.0.0',
      '--hardware',
      'hw',
      '-o',
      'json',
    );
    expect(up.code, up.stderr).toBe(0);
    const { sha256 } = JSON.parse(up.stdout) as { sha256: string };

    const intact = cli('artifact', 'verify');
    expect(intact.code, intact.stderr).toBe(0);
    expect(intact.stdout).toMatch(/checked 1 stored artifact .*: all intact/);

    const path = new FsBlobStore(data).path(sha256);
    const bytes = readFileSync(path);
    bytes[123] = bytes[123]! ^ 1;
    writeFileSync(path, bytes);
    const damaged = cli('artifact', 'verify', 'fw@1.0.0');
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toContain(`DAMAGED ${sha256} (fw@1.0.0): altered: 40000 bytes hashing to`);
    const json = JSON.parse(cli('artifact', 'verify', '-o', 'json').stdout);
    expect(json.damaged).toMatchObject([{ sha256, problem: 'altered' }]);

    const repaired = cli('artifact', 'repair', 'fw@1.0.0', file);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stdout).toMatch(/fw@1\.0\.0: the stored artifact was altered; replaced with/);
    expect(cli('artifact', 'verify').stdout).toMatch(/all intact/);
  }, 120_000);
});

describe('fleetd server --scrub-rate', () => {
  it('refuses what is not a rate', () => {
    const r = runCli(['server', '--data', tempDir(), '--scrub-rate', 'fast']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--scrub-rate: "fast" is not a number of MiB per second/);
  });
});

describe('an upload cut off by the client', () => {
  it('is logged at info level, not as an unhandled error, and leaves no temp file', async () => {
    const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
    const { port } = new URL(server.url);
    const before = server.output().length;
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      'POST /api/v1/artifacts?name=cut&version=1.0.0&hardware=hw HTTP/1.1\r\n' +
        `Host: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
        'Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n',
    );
    socket.write(randomBytes(200_000));
    const tmp = join(data, 'blobs', 'tmp');
    const temps = () => {
      try {
        return readdirSync(tmp).length;
      } catch {
        return 0;
      }
    };
    try {
      await eventually('the upload to start', () => temps() > 0);
    } finally {
      socket.destroy();
    }
    await eventually('the abort to be logged', () => /upload aborted/.test(server.output().slice(before)));
    const log = server.output().slice(before);
    expect(log).not.toMatch(/unhandled error/);
    const line = JSON.parse(log.split('\n').find((l) => l.includes('upload aborted'))!);
    expect(line.level).toBeLessThan(40); // info or debug, not warn or error
    await eventually('the temp file to go', () => temps() === 0);
  });
});
