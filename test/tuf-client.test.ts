/**
 * FleetD's TUF repository refreshed by tuf-js, an independent TUF client, against the running server: a target
 * verifies, and each staged attack is refused (freeze, rollback, mix-and-match, a root below threshold, an
 * image changed after signing); a k-of-n root rotation reaches the client through the signed root chain.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Key, Metadata, MetadataKind, Timestamp } from '@tufjs/models';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../src/artifacts/blob-store.js';
import { readTufSigner, writeNewTufKey } from '../src/artifacts/tuf/tuf-keys.js';
import { nextRoot, readRootFile, signRoot } from '../src/artifacts/tuf/tuf-root.js';
import { tempDir } from './support/processes.js';
import { deviceWithRelease, startTufServer, type TufServer, tufClient, tufServer } from './support/tuf.js';

const DAY = 86_400_000;
const image = Buffer.from('firmware 1.0.0 '.repeat(4000));
const release = { name: 'fw', version: '1.0.0', bytes: image };

let t: TufServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const metadata = (s: TufServer, name: string) => join(s.dataDir, 'tuf', 'metadata', name);
const rootJson = (s: TufServer) => readFileSync(s.ceremony.rootFile, 'utf8');

describe('tuf-js refreshing a FleetD TUF repository', () => {
  it('verifies and downloads a release as a target (length and sha256 from signed targets)', async () => {
    t = await tufServer({ start: Date.now() });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const { updater } = tufClient(t, device, undefined, rootJson(t));
    await updater.refresh();
    const info = await updater.getTargetInfo('fw@1.0.0');
    expect(info?.length).toBe(image.length);
    const file = await updater.downloadTarget(info!);
    expect(readFileSync(file).equals(image)).toBe(true);
    expect(await updater.getTargetInfo('fw@9.9.9')).toBeUndefined();
  });

  it('refuses an expired timestamp (a freeze), and the server re-signs it before expiry when its clock moves', async () => {
    // The server's clock three days behind: what it signs expired two days ago for the client.
    t = await tufServer({ start: Date.now() - 3 * DAY });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const client = tufClient(t, device, undefined, rootJson(t));
    await expect(client.updater.refresh()).rejects.toThrow(/timestamp.*expired|expired.*timestamp/i);
    t.clock.set(Date.now());
    expect(await t.server.tuf?.tick()).toBe(true);
    await tufClient(t, device, client.metadataDir).updater.refresh();
  });

  it('re-signs timestamp (only) once half its lifetime is gone', async () => {
    t = await tufServer({ start: Date.now() });
    const before = JSON.parse(readFileSync(metadata(t, 'timestamp.json'), 'utf8'));
    t.clock.advance(11 * 3_600_000);
    expect(await t.server.tuf?.tick()).toBe(false);
    t.clock.advance(2 * 3_600_000);
    expect(await t.server.tuf?.tick()).toBe(true);
    const after = JSON.parse(readFileSync(metadata(t, 'timestamp.json'), 'utf8'));
    expect(after.signed.version).toBe(before.signed.version + 1);
    expect(after.signed.meta['snapshot.json'].version).toBe(before.signed.meta['snapshot.json'].version);
  });

  it('refuses rolled-back metadata: an older timestamp served after a newer one was seen', async () => {
    t = await tufServer({ start: Date.now() });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const client = tufClient(t, device, undefined, rootJson(t));
    await client.updater.refresh();
    const old = readFileSync(metadata(t, 'timestamp.json'));
    await deviceWithRelease(t, 'dev-2', { name: 'fw', version: '1.1.0', bytes: Buffer.from('one one zero') });
    await tufClient(t, device, client.metadataDir).updater.refresh();
    writeFileSync(metadata(t, 'timestamp.json'), old);
    await expect(tufClient(t, device, client.metadataDir).updater.refresh()).rejects.toThrow(/version/i);
  });

  it('refuses a mix-and-match: a snapshot that is not the one the timestamp signed', async () => {
    t = await tufServer({ start: Date.now() });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const first = JSON.parse(readFileSync(metadata(t, 'timestamp.json'), 'utf8')).signed.meta['snapshot.json']
      .version as number;
    await deviceWithRelease(t, 'dev-2', { name: 'fw', version: '1.1.0', bytes: Buffer.from('one one zero') });
    const now = JSON.parse(readFileSync(metadata(t, 'timestamp.json'), 'utf8')).signed.meta['snapshot.json']
      .version as number;
    expect(now).toBeGreaterThan(first);
    // The current snapshot's name, an older snapshot's (validly signed) bytes.
    writeFileSync(metadata(t, `${now}.snapshot.json`), readFileSync(metadata(t, `${first}.snapshot.json`)));
    await expect(tufClient(t, device, undefined, rootJson(t)).updater.refresh()).rejects.toThrow(
      /hash|length|version/i,
    );
  });

  it('refuses an image changed on the server after it was signed', async () => {
    t = await tufServer({ start: Date.now() });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const { updater } = tufClient(t, device, undefined, rootJson(t));
    await updater.refresh();
    const info = await updater.getTargetInfo('fw@1.0.0');
    const blob = new FsBlobStore(t.dataDir, t.clock).path(info!.hashes.sha256!);
    const swapped = Buffer.from(image);
    swapped[100] = swapped[100]! ^ 1;
    writeFileSync(blob, swapped);
    await expect(updater.downloadTarget(info!)).rejects.toThrow(/hash|mismatch/i);
  });

  it('takes a k-of-n root rotation through the signed chain, and refuses a root below threshold', async () => {
    const start = Date.now();
    t = await tufServer({ start, threshold: 2, keys: 3 });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const client = tufClient(t, device, undefined, rootJson(t));
    await client.updater.refresh();

    const offline = tempDir('fleetd-tuf-rotation-');
    const newKeyFiles = [1, 2, 3].map((i) => join(offline, `root-new-${i}.key`));
    const newKeys = [];
    for (const file of newKeyFiles) newKeys.push(await writeNewTufKey(file));
    const current = await readRootFile(t.ceremony.rootFile);
    const two = nextRoot(current, { now: start, rootKeys: newKeys, threshold: 2 });

    // One old signature is below the old threshold of 2: the server refuses to install it.
    await signRoot(two, [t.ceremony.rootKeyFiles[0]!, newKeyFiles[0]!, newKeyFiles[1]!]);
    const below = await t.api('POST', '/api/v1/tuf/root', two.toJSON());
    expect(below.status).toBe(400);
    expect(((await below.json()) as { error: { message: string } }).error.message).toMatch(
      /threshold of the current root/,
    );

    await signRoot(two, [t.ceremony.rootKeyFiles[2]!]);
    const installed = await t.api('POST', '/api/v1/tuf/root', two.toJSON());
    expect(installed.status, await installed.clone().text()).toBe(201);
    expect(await installed.json()).toEqual({ root_version: 2 });

    await tufClient(t, device, client.metadataDir).updater.refresh();
    const trusted = JSON.parse(readFileSync(join(client.metadataDir, 'root.json'), 'utf8'));
    expect(trusted.signed.version).toBe(2);
    expect(trusted.signed.roles.root.keyids.sort()).toEqual(newKeys.map((k) => k.keyID).sort());

    // A compromised server that writes a version 3 signed by one new key: the client refuses it.
    const three = nextRoot(two, { now: start });
    await signRoot(three, [newKeyFiles[0]!]);
    writeFileSync(join(t.dataDir, 'tuf', 'root', '3.root.json'), JSON.stringify(three.toJSON()));
    await expect(tufClient(t, device, client.metadataDir).updater.refresh()).rejects.toThrow(
      /root was signed by 1\/2 keys/,
    );
  });

  it('revokes stolen online keys through the next root: the client refuses metadata the old keys sign', async () => {
    const start = Date.now();
    t = await tufServer({ start });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const client = tufClient(t, device, undefined, rootJson(t));
    await client.updater.refresh();
    const stolen = await readTufSigner(join(t.dataDir, 'tuf', 'keys', 'timestamp.key'));
    await t.close();

    // The holders name new online keys in root version 2; the rebuilt server signs with them.
    const fresh = tempDir('fleetd-tuf-new-online-');
    const roleKeys: Record<string, Key[]> = {};
    for (const role of ['targets', 'snapshot', 'timestamp']) {
      roleKeys[role] = [await writeNewTufKey(join(fresh, `${role}.key`))];
      copyFileSync(join(fresh, `${role}.key`), join(t.dataDir, 'tuf', 'keys', `${role}.key`));
    }
    const two = nextRoot(await readRootFile(t.ceremony.rootFile), { now: start, roleKeys });
    await signRoot(two, t.ceremony.rootKeyFiles.slice(0, 2));
    writeFileSync(join(t.dataDir, 'tuf', 'root', '2.root.json'), JSON.stringify(two.toJSON()));
    t = await startTufServer(t.dataDir, t.ceremony, t.clock);
    await tufClient(t, device, client.metadataDir).updater.refresh();

    // A newer timestamp signed with the stolen key is refused.
    const current = Metadata.fromJSON(
      MetadataKind.Timestamp,
      JSON.parse(readFileSync(metadata(t, 'timestamp.json'), 'utf8')),
    );
    const forged = new Metadata(
      new Timestamp({
        version: current.signed.version + 1,
        specVersion: '1.0.31',
        expires: current.signed.expires,
        snapshotMeta: current.signed.snapshotMeta,
      }),
    );
    forged.sign(stolen.sign, false);
    writeFileSync(metadata(t, 'timestamp.json'), JSON.stringify(forged.toJSON()));
    await expect(tufClient(t, device, client.metadataDir).updater.refresh()).rejects.toThrow(
      /timestamp was signed by 0\/1 keys/,
    );
  });
});
