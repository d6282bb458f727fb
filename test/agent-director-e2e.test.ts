/**
 * Real `fleetd agent` processes provisioned with the image repository's TUF root and the director's root,
 * against a real server process (through a proxy that, when told to, serves a device's director metadata
 * itself, as a compromised server would): the agent installs a release that both sign; refuses a release that is
 * a signed image but not what the director signed for this device (another image, or the right image for
 * another device); refuses director metadata signed by keys the director root does not name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DIRECTOR_LIFETIMES,
  type DirectorSigners,
  signDirectorMetadata,
} from '../src/artifacts/director/director-metadata.js';
import { readTufSigner } from '../src/artifacts/tuf/tuf-keys.js';
import { initRoot, type RootInitResult } from '../src/artifacts/tuf/tuf-root.js';
import type { DirectorMetadata } from '../src/store/director-store.js';
import { type Agent, startAgent } from './support/agents.js';
import { type Operator, operator } from './support/fleet.js';
import { freePort, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { forward } from './support/recording-proxy.js';
import { installDirector, tufDataFolder } from './support/tuf.js';

let server: ServerProcess | undefined;
let proxy: Server | undefined;
let agent: Agent | undefined;
afterAll(async () => {
  await agent?.kill('SIGKILL');
  await new Promise((resolve) => proxy?.close(resolve) ?? resolve(undefined));
  await server?.kill();
});

/** Director metadata the proxy serves instead of the server's, for any device, while set. */
let forged: DirectorMetadata | undefined;

/** Passes everything to the server, except director timestamp, snapshot and targets while `forged` is set. */
async function startProxy(upstream: URL): Promise<string> {
  proxy = createServer((req, res) => {
    const m = /^\/api\/device\/v1\/director\/(?:(\d+)\.(snapshot|targets)|timestamp)\.json$/.exec(
      req.url ?? '',
    );
    if (forged && m) {
      const body =
        m[2] === undefined
          ? forged.timestamp
          : m[2] === 'snapshot' && Number(m[1]) === forged.snapshotVersion
            ? forged.snapshot
            : m[2] === 'targets' && Number(m[1]) === forged.targetsVersion
              ? forged.targets
              : undefined;
      res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
      res.end(body ?? '{"error":{"code":"NOT_FOUND","message":"no such file"}}');
      return;
    }
    forward(upstream, req, res);
  });
  await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

const signersOf = async (c: RootInitResult): Promise<DirectorSigners> => ({
  targets: await readTufSigner(c.onlineKeyFiles.targets),
  snapshot: await readTufSigner(c.onlineKeyFiles.snapshot),
  timestamp: await readTufSigner(c.onlineKeyFiles.timestamp),
});

let op: Operator | undefined;
let director: RootInitResult | undefined;
let version = 100;
const imageOne = randomBytes(32 * 1024);
const imageTwo = randomBytes(32 * 1024);
const infoOf = (b: Buffer) => ({ size: b.length, sha256: createHash('sha256').update(b).digest('hex') });

/** Director metadata naming `target` for `deviceId`, with versions above any the agent has seen. */
async function forge(
  signers: DirectorSigners,
  deviceId: string,
  target: string,
  image: { size: number; sha256: string },
): Promise<DirectorMetadata> {
  version += 10;
  return signDirectorMetadata({
    deviceId,
    stored: {
      deviceId,
      targetsVersion: version,
      snapshotVersion: version,
      timestampVersion: version,
      // Expired and unsigned: every role is re-signed, one version above these.
      targets:
        '{"signed":{"_type":"targets","version":1,"spec_version":"1.0.31","expires":"2000-01-01T00:00:00Z","targets":{}},"signatures":[]}',
      snapshot:
        '{"signed":{"_type":"snapshot","version":1,"spec_version":"1.0.31","expires":"2000-01-01T00:00:00Z","meta":{"targets.json":{"version":1}}},"signatures":[]}',
      timestamp:
        '{"signed":{"_type":"timestamp","version":1,"spec_version":"1.0.31","expires":"2000-01-01T00:00:00Z","meta":{"snapshot.json":{"version":1}}},"signatures":[]}',
      updatedAt: 0,
    },
    wanted: { [target]: { length: image.size, sha256: image.sha256, custom: { device_id: deviceId } } },
    signers,
    lifetimes: DIRECTOR_LIFETIMES,
    now: Date.now(),
  })!;
}

async function assignAndWait(release: string): Promise<Record<string, unknown>> {
  const assigned = await op!.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
    release,
    devices: ['dir-1'],
  });
  expect(assigned.body.assigned, JSON.stringify(assigned.body)).toHaveLength(1);
  return op!.waitForUpdate(assigned.body.assigned[0]!.id, ['succeeded', 'failed', 'rolled_back']);
}

describe('fleetd agent with --tuf-root and --director-root', () => {
  it('installs a release that the image repository and the director both sign for it', async () => {
    const now = Date.now();
    const images = await initRoot({ out: tempDir('fleetd-tuf-ceremony-'), threshold: 1, keys: 1, now });
    const data = tufDataFolder(images);
    director = await installDirector(data, now);
    const port = await freePort();
    server = await spawnServer(data, [
      '--port',
      String(port),
      '--heartbeat-interval',
      '1s',
      '--log-level',
      'warn',
    ]);
    op = operator(server.url, data);
    const viaProxy = await startProxy(new URL(server.url));
    await op.upload('name=dir-fw&version=1.0.0&hardware=pos-x200', imageOne);

    agent = await startAgent(op, 'dir-1', {
      serverUrl: viaProxy,
      firmware: '0.9.0',
      flags: ['--tuf-root', images.rootFile, '--director-root', director.rootFile],
    });
    const done = await assignAndWait('dir-fw@1.0.0');
    expect(done.state, agent.output()).toBe('succeeded');
    const targets = JSON.parse(readFileSync(join(agent.stateDir, 'director', 'targets.json'), 'utf8'));
    expect(targets.signed.targets['dir-fw@1.0.0'].custom).toEqual({
      device_id: 'dir-1',
      hardware: ['pos-x200'],
    });
  });

  it('refuses a signed image that is not what the director signed for this device', async () => {
    expect(op && director && agent, 'the first test set the fleet up').toBeTruthy();
    await op!.upload('name=dir-fw&version=2.0.0&hardware=pos-x200', imageTwo);
    const one = infoOf(imageOne);
    const two = infoOf(imageTwo);
    const signers = await signersOf(director!);

    // The director (its real keys) names another image for this device than the one offered.
    forged = await forge(signers, 'dir-1', 'dir-fw@1.0.0', one);
    const other = await assignAndWait('dir-fw@2.0.0');
    expect(other.state, agent!.output()).toBe('failed');
    expect(other.error).toBe('director: dir-fw@2.0.0 is not what the director signed for this device');

    // The director names this image, but for another device.
    forged = await forge(signers, 'dir-9', 'dir-fw@2.0.0', two);
    const elsewhere = await assignAndWait('dir-fw@2.0.0');
    expect(elsewhere.state, agent!.output()).toBe('failed');
    expect(elsewhere.error).toBe('director: dir-fw@2.0.0 is not what the director signed for this device');
  });

  it('refuses director metadata signed by keys the director root does not name', async () => {
    expect(op && director && agent, 'the first test set the fleet up').toBeTruthy();
    const two = infoOf(imageTwo);
    const stranger = await initRoot({
      out: tempDir('fleetd-director-stranger-'),
      threshold: 1,
      keys: 1,
      now: Date.now(),
    });
    forged = await forge(await signersOf(stranger), 'dir-1', 'dir-fw@2.0.0', two);
    const refused = await assignAndWait('dir-fw@2.0.0');
    expect(refused.state, agent!.output()).toBe('failed');
    expect(String(refused.error)).toMatch(/^director metadata refused: .*signed by 0\/1 keys/);
  });
});
