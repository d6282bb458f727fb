/**
 * The TUF metadata mirrored for a CDN (docs/signing.md, "A mirror for a CDN"): a real server process with
 * `--tuf-mirror` keeps a folder in step with its repository; a static web server stands in for the CDN and
 * serves that folder. A real agent with `--tuf-metadata-url` reads its metadata there, never sending its
 * credential, and installs a release; a second agent reading a copy of the mirror whose timestamp was
 * altered (a CDN that cannot be trusted) refuses the same release.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, createReadStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initRoot } from '../src/artifacts/tuf/tuf-root.js';
import { type Agent, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { operator } from './support/fleet.js';
import { freePort, runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { tufDataFolder } from './support/tuf.js';

interface StaticOrigin {
  url: string;
  /** Each request's path, and whether it carried an Authorization header. */
  requests: Array<{ path: string; authorized: boolean }>;
  server: Server;
}

/** A plain static web server for one folder under /tuf/, as a CDN's origin would be. */
async function staticOrigin(folder: string): Promise<StaticOrigin> {
  const requests: StaticOrigin['requests'] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://origin').pathname;
    requests.push({ path, authorized: req.headers.authorization !== undefined });
    const name = path.replace(/^\/tuf\//, '');
    const file = join(folder, name);
    if (!path.startsWith('/tuf/') || name.includes('/') || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/tuf`, requests, server };
}

let server: ServerProcess | undefined;
const agents: Agent[] = [];
const origins: StaticOrigin[] = [];
afterAll(async () => {
  for (const agent of agents) await agent.kill('SIGKILL');
  for (const origin of origins) origin.server.close();
  await server?.kill();
});

describe('fleetd server --tuf-mirror', () => {
  it('keeps a folder a CDN serves; an agent reads its metadata there and installs; an altered copy is refused', async () => {
    const ceremony = await initRoot({
      out: tempDir('fleetd-tuf-ceremony-'),
      threshold: 1,
      keys: 1,
      now: Date.now(),
    });
    const data = tufDataFolder(ceremony);
    const mirror = join(tempDir('fleetd-tuf-mirror-'), 'tuf');
    server = await spawnServer(data, [
      '--port',
      String(await freePort()),
      '--heartbeat-interval',
      '1s',
      '--log-level',
      'warn',
      '--tuf-mirror',
      mirror,
    ]);
    const op = operator(server.url, data);
    await op.upload('name=cdn-fw&version=1.0.0&hardware=pos-x200', randomBytes(32 * 1024));

    // The upload re-signs targets, snapshot and timestamp; the mirror follows with the same bytes as served.
    await eventually('the mirror to list cdn-fw@1.0.0', async () => {
      if (!existsSync(join(mirror, 'timestamp.json'))) return false;
      const timestamp = JSON.parse(readFileSync(join(mirror, 'timestamp.json'), 'utf8'));
      const snapshotVersion = timestamp.signed.meta['snapshot.json'].version;
      const snapshot = JSON.parse(readFileSync(join(mirror, `${snapshotVersion}.snapshot.json`), 'utf8'));
      const targetsVersion = snapshot.signed.meta['targets.json'].version;
      const targetsFile = join(mirror, `${targetsVersion}.targets.json`);
      return existsSync(targetsFile) && readFileSync(targetsFile, 'utf8').includes('cdn-fw@1.0.0');
    });
    for (const name of ['1.root.json', 'timestamp.json']) {
      const served = await fetch(`${server.url}/api/device/v1/tuf/${name}`);
      expect(Buffer.from(await served.arrayBuffer()).equals(readFileSync(join(mirror, name))), name).toBe(
        true,
      );
    }

    // A CDN that alters what it serves: the timestamp's version changed, its signature left as it was.
    const altered = join(tempDir('fleetd-tuf-altered-'), 'tuf');
    cpSync(mirror, altered, { recursive: true });
    const timestamp = JSON.parse(readFileSync(join(altered, 'timestamp.json'), 'utf8'));
    timestamp.signed.version += 1;
    writeFileSync(join(altered, 'timestamp.json'), JSON.stringify(timestamp));

    const cdn = await staticOrigin(mirror);
    const badCdn = await staticOrigin(altered);
    origins.push(cdn, badCdn);
    const install = async (id: string, metadataUrl: string) => {
      const agent = await startAgent(op, id, {
        firmware: '0.9.0',
        flags: ['--tuf-root', ceremony.rootFile, '--tuf-metadata-url', metadataUrl],
      });
      agents.push(agent);
      const assigned = await op.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
        release: 'cdn-fw@1.0.0',
        devices: [id],
      });
      const done = await op.waitForUpdate(assigned.body.assigned[0]!.id, [
        'succeeded',
        'failed',
        'rolled_back',
      ]);
      return { done, agent };
    };

    const good = await install('cdn-1', cdn.url);
    expect(good.done.state, good.agent.output()).toBe('succeeded');
    expect(cdn.requests.map((r) => r.path)).toContain('/tuf/timestamp.json');
    expect(cdn.requests.filter((r) => r.authorized)).toEqual([]);

    const bad = await install('cdn-2', badCdn.url);
    expect(bad.done.state).toBe('failed');
    expect(String(bad.done.error)).toMatch(/TUF metadata refused/);
    expect(badCdn.requests.filter((r) => r.authorized)).toEqual([]);
  }, 180_000);

  it('refuses --tuf-mirror on a server without a TUF repository, and a mirror URL without a root', async () => {
    const data = tempDir();
    const started = spawnServer(data, ['--port', String(await freePort()), '--tuf-mirror', tempDir()]);
    await expect(started).rejects.toThrow(/--tuf-mirror: this server has no TUF repository/);

    const keys = tempDir();
    expect(runCli(['keys', 'generate', '--out', keys]).code).toBe(0);
    const agent = runCli([
      'agent',
      '--server',
      'http://127.0.0.1:9',
      '--device-id',
      'cdn-3',
      '--hardware',
      'pos-x200',
      '--state-dir',
      tempDir(),
      '--public-key',
      join(keys, 'signing.pub'),
      '--tuf-metadata-url',
      'http://cdn.example.net/tuf',
    ]);
    expect(agent.code).not.toBe(0);
    expect(agent.stderr.trim().split('\n')).toEqual([
      'fleetd: --tuf-metadata-url needs a TUF root to trust (--tuf-root FILE, or a bundle with one)',
    ]);
  });
});
