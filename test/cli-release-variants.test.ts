/**
 * `fleetd artifact upload --variant` and `fleetd artifact add-variant` against a real `fleetd server` process: a
 * release uploaded with its `.swu` lists it, a bad `--variant` is refused before anything is uploaded, and a
 * variant the server refuses is one clear line and exit 1.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** A one-member newc cpio with sw-description first: what the server checks a .swu for. */
function swu(): Buffer {
  const name = 'sw-description';
  const data = Buffer.from('software = { version = "2.0.0"; };');
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const fields = [1, 0o100644, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length + 1, 0].map(hex).join('');
  const head = Buffer.concat([Buffer.from(`070701${fields}`), Buffer.from(`${name}\0`)]);
  return Buffer.concat([head, Buffer.alloc((4 - (head.length % 4)) % 4), data]);
}

describe('fleetd artifact variants', () => {
  // Three CLI processes, each a Node start.
  it('uploads a release with its .swu, refuses a bad --variant before uploading, and a bad .mender in one line', () => {
    const file = join(data, 'app.bin');
    const image = join(data, 'app.swu');
    writeFileSync(file, 'app 2.0.0\n');
    writeFileSync(image, swu());
    const release = [
      'artifact',
      'upload',
      file,
      '--name',
      'app',
      '--version',
      '2.0.0',
      '--hardware',
      'board',
    ];

    const wrong = cli(...release, '--type', 'file', '--variant', 'rauc=app.raucb');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim()).toBe(
      'fleetd: --variant: "rauc=app.raucb" must be CLIENT=FILE, CLIENT one of swupdate, mender',
    );

    const up = cli(...release, '--type', 'file', '--variant', `swupdate=${image}`);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(
      /^app@2\.0\.0 uploaded as rel_\S+ .*\nvariants: swupdate \(sha256 [0-9a-f]{64}\)\n$/,
    );

    const bad = cli('artifact', 'add-variant', 'app@2.0.0', 'mender', file);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/mender variant: /);
  });
});
