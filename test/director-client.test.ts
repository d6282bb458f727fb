/**
 * The director's per-device metadata refreshed by tuf-js as an independent client, a separate program
 * (support/director-client-program.mjs), against a running server: a device reads metadata naming exactly its
 * image and itself; another device, or no credential, does not; a version rolled back, signatures made by keys
 * the director root does not name, and a root below threshold are refused; the director's own root rotates
 * through its signed chain.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Signature } from '@tufjs/models';
import { afterEach, describe, expect, it } from 'vitest';
import { DIRECTOR_LIFETIMES, signDirectorMetadata } from '../src/artifacts/director/director-metadata.js';
import { readTufSigner, writeNewTufKey } from '../src/artifacts/tuf/tuf-keys.js';
import {
  initRoot,
  nextRoot,
  type RootInitResult,
  readRootFile,
  signRoot,
} from '../src/artifacts/tuf/tuf-root.js';
import { ManualClock } from '../src/core/clock.js';
import { tempDir } from './support/processes.js';
import {
  deviceWithRelease,
  installDirector,
  startTufServer,
  type TufServer,
  tufDataFolder,
} from './support/tuf.js';

const execFileAsync = promisify(execFile);
const PROGRAM = join(import.meta.dirname, 'support', 'director-client-program.mjs');
const image = Buffer.from('firmware 1.0.0 '.repeat(4000));
const imageSha256 = createHash('sha256').update(image).digest('hex');

let t: TufServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

type Result =
  | { ok: true; length: number; sha256: string; custom: Record<string, unknown>; targets_version: number }
  | { ok: false; error: string };

/** A server with an image repository and a director, each from its own offline ceremony. */
async function serverWithDirector(): Promise<{ t: TufServer; director: RootInitResult }> {
  const now = Date.now();
  const images = await initRoot({ out: tempDir('fleetd-tuf-offline-'), threshold: 1, keys: 1, now });
  const dataDir = tufDataFolder(images);
  const director = await installDirector(dataDir, now);
  return { t: await startTufServer(dataDir, images, new ManualClock(now)), director };
}

/** The client program for one device: its own trusted metadata folder, seeded with the director root. */
function directorClient(server: TufServer, credential: string | undefined, rootJson: string) {
  const metadataDir = tempDir('fleetd-director-client-');
  writeFileSync(join(metadataDir, 'root.json'), rootJson);
  return {
    metadataDir,
    async run(target: string): Promise<Result> {
      const { stdout } = await execFileAsync(
        process.execPath,
        [PROGRAM, `${server.server.url}/api/device/v1/director`, metadataDir, target],
        { env: { ...process.env, FLEETD_DEVICE_CREDENTIAL: credential ?? '' } },
      ).catch((e: { stdout?: string; stderr?: string }) => {
        if (!e.stdout) throw new Error(`the director client program failed: ${e.stderr}`);
        return { stdout: e.stdout };
      });
      return JSON.parse(stdout.trim()) as Result;
    },
  };
}

const bearer = (h: Record<string, string>) => (h.authorization ?? '').replace(/^Bearer /, '');

async function newDevice(server: TufServer, id: string): Promise<string> {
  await server.api('POST', '/api/v1/devices/import', {
    devices: [{ id, hardware_type: 'hw-a', firmware_version: '0.1.0' }],
  });
  const r = (await (await server.api('POST', `/api/v1/devices/${id}/credential`)).json()) as {
    credential: string;
  };
  return r.credential;
}

describe('tuf-js, a separate program, refreshing a device’s director metadata', () => {
  it('names exactly the image a device must install, and that device; other devices and strangers get nothing of it', async () => {
    const s = await serverWithDirector();
    t = s.t;
    const rootJson = readFileSync(s.director.rootFile, 'utf8');
    const dev1 = bearer(await deviceWithRelease(t, 'dev-1', { name: 'fw', version: '1.0.0', bytes: image }));
    const got = await directorClient(t, dev1, rootJson).run('fw@1.0.0');
    expect(got).toMatchObject({
      ok: true,
      length: image.length,
      sha256: imageSha256,
      custom: { device_id: 'dev-1' },
    });

    const dev2 = await newDevice(t, 'dev-2');
    expect(await directorClient(t, dev2, rootJson).run('fw@1.0.0')).toEqual({
      ok: false,
      error: expect.stringMatching(/fw@1\.0\.0 is not in the director's targets/),
    });
    expect(await directorClient(t, undefined, rootJson).run('fw@1.0.0')).toEqual({
      ok: false,
      error: expect.stringMatching(/HTTP 401/),
    });
    // A root the director was not made with trusts none of it.
    const other = await initRoot({
      out: tempDir('fleetd-director-other-'),
      threshold: 1,
      keys: 1,
      now: Date.now(),
    });
    expect(await directorClient(t, dev1, readFileSync(other.rootFile, 'utf8')).run('fw@1.0.0')).toEqual({
      ok: false,
      error: expect.stringMatching(/signed by 0\/1/),
    });

    const state = (await (await t.api('GET', '/api/v1/tuf/director')).json()) as Record<string, unknown>;
    const root = JSON.parse(rootJson);
    expect(state).toMatchObject({
      root_version: 1,
      root_keys: root.signed.roles.root.keyids,
      keys: {
        targets: root.signed.roles.targets.keyids[0],
        snapshot: root.signed.roles.snapshot.keyids[0],
        timestamp: root.signed.roles.timestamp.keyids[0],
      },
    });
  });

  it("refuses a rolled-back version and signatures the director's keys did not make", async () => {
    const s = await serverWithDirector();
    t = s.t;
    const rootJson = readFileSync(s.director.rootFile, 'utf8');
    const dev1 = bearer(await deviceWithRelease(t, 'dev-1', { name: 'fw', version: '1.0.0', bytes: image }));
    const client = directorClient(t, dev1, rootJson);
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true, targets_version: 1 });
    const store = t.server.store.director;
    const old = (await store.get('dev-1'))!;

    // The update is cancelled: the director's next targets (version 2) name nothing for dev-1.
    const updates = (await (await t.api('GET', '/api/v1/updates?device=dev-1')).json()) as {
      updates: Array<{ id: string }>;
    };
    expect((await t.api('POST', `/api/v1/updates/${updates.updates[0]!.id}/cancel`)).status).toBe(200);
    expect(await client.run('fw@1.0.0')).toEqual({
      ok: false,
      error: expect.stringMatching(/not in the director's targets/),
    });
    const now = (await store.get('dev-1'))!;
    expect(now.targetsVersion).toBe(2);

    // The same image assigned again, and a server (or a database restored from backup) replaying the older,
    // validly signed metadata that names it: the client has seen newer versions.
    const again = await t.api('POST', '/api/v1/updates/assign', { release: 'fw@1.0.0', devices: ['dev-1'] });
    expect(again.status).toBe(200);
    expect(await store.save({ ...old, updatedAt: now.updatedAt }, now.timestampVersion)).toBe(true);
    expect(await client.run('fw@1.0.0')).toEqual({ ok: false, error: expect.stringMatching(/version/i) });

    // Metadata naming the image, with higher versions, signed by a stranger's keys under the director's key ids
    // (what a database writer without the director's keys could make; metadata under the stranger's own key ids
    // the server re-signs, the end-to-end test serves it to a real agent).
    const stranger = await initRoot({
      out: tempDir('fleetd-director-stranger-'),
      threshold: 1,
      keys: 1,
      now: Date.now(),
    });
    const real = JSON.parse(rootJson).signed.roles as Record<string, { keyids: string[] }>;
    const posing = async (role: 'targets' | 'snapshot' | 'timestamp') => {
      const signer = await readTufSigner(stranger.onlineKeyFiles[role]);
      const keyId = real[role]!.keyids[0]!;
      return { keyId, sign: (data: Buffer) => new Signature({ keyID: keyId, sig: signer.sign(data).sig }) };
    };
    const signers = {
      targets: await posing('targets'),
      snapshot: await posing('snapshot'),
      timestamp: await posing('timestamp'),
    };
    const forged = signDirectorMetadata({
      deviceId: 'dev-1',
      stored: { ...now, targetsVersion: 10, snapshotVersion: 10, timestampVersion: 10 },
      wanted: { 'fw@1.0.0': { length: image.length, sha256: imageSha256, custom: { device_id: 'dev-1' } } },
      signers,
      lifetimes: DIRECTOR_LIFETIMES,
      now: Date.now(),
    })!;
    expect(await store.save(forged, old.timestampVersion)).toBe(true);
    // The server's clock has not moved: nothing is due, so it serves what is stored.
    expect(await directorClient(t, dev1, rootJson).run('fw@1.0.0')).toEqual({
      ok: false,
      error: expect.stringMatching(/timestamp was signed by 0\/1 keys/),
    });
  });

  it("rotates the director's root keys through its own signed chain; refuses a root below threshold", async () => {
    const s = await serverWithDirector();
    t = s.t;
    const rootJson = readFileSync(s.director.rootFile, 'utf8');
    const dev1 = bearer(await deviceWithRelease(t, 'dev-1', { name: 'fw', version: '1.0.0', bytes: image }));
    const client = directorClient(t, dev1, rootJson);
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });

    const newKeyFile = join(tempDir('fleetd-director-new-'), 'root-new.key');
    const newKey = await writeNewTufKey(newKeyFile);
    const two = nextRoot(await readRootFile(s.director.rootFile), {
      now: Date.now(),
      rootKeys: [newKey],
      threshold: 1,
    });
    await signRoot(two, [newKeyFile]);
    const below = await t.api('POST', '/api/v1/tuf/director/root', two.toJSON());
    expect(below.status).toBe(400);
    expect(((await below.json()) as { error: { message: string } }).error.message).toMatch(
      /current root's root keys/,
    );
    await signRoot(two, [s.director.rootKeyFiles[0]!]);
    const installed = await t.api('POST', '/api/v1/tuf/director/root', two.toJSON());
    expect(installed.status, await installed.clone().text()).toBe(201);
    expect(
      ((await (await t.api('GET', '/api/v1/tuf/director')).json()) as { root_keys: string[] }).root_keys,
    ).toEqual([newKey.keyID]);

    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });
    const trusted = JSON.parse(readFileSync(join(client.metadataDir, 'root.json'), 'utf8'));
    expect(trusted.signed.version).toBe(2);
  });
});
