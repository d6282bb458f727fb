/**
 * FleetD's TUF repository refreshed by tuf-js as an independent TUF client, a separate program
 * (support/tuf-client-program.mjs), against the running server: a target verifies and downloads, and each
 * staged attack is refused: an expired timestamp (freeze), rolled-back timestamp, replayed old snapshot, a target
 * not in the signed metadata, an image changed after signing, a root below threshold, a rolled-back root and a
 * revoked key. A k-of-n root rotation reaches the client through the signed root chain.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Key, Metadata, MetadataKind, MetaFile, Snapshot, Targets, Timestamp } from '@tufjs/models';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../src/artifacts/blob-store.js';
import { readTufSigner, writeNewTufKey } from '../src/artifacts/tuf/tuf-keys.js';
import { nextRoot, readRootFile, signRoot } from '../src/artifacts/tuf/tuf-root.js';
import { tempDir } from './support/processes.js';
import { deviceWithRelease, startTufServer, type TufServer, tufClient, tufServer } from './support/tuf.js';

const DAY = 86_400_000;
const image = Buffer.from('firmware 1.0.0 '.repeat(4000));
const release = { name: 'fw', version: '1.0.0', bytes: image };
const imageSha256 = createHash('sha256').update(image).digest('hex');

let t: TufServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const metadata = (s: TufServer, name: string) => join(s.dataDir, 'tuf', 'metadata', name);
const rootJson = (s: TufServer) => readFileSync(s.ceremony.rootFile, 'utf8');
const refused = (error: RegExp) => ({ ok: false, error: expect.stringMatching(error) });

describe('tuf-js, a separate program, refreshing a FleetD TUF repository', () => {
  it('verifies and downloads a release as a target; refuses a target not in the signed metadata', async () => {
    t = await tufServer({ start: Date.now() });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const client = tufClient(t, device, undefined, rootJson(t));
    const got = await client.run('fw@1.0.0');
    expect(got).toMatchObject({ ok: true, length: image.length, sha256: imageSha256 });
    expect(got.ok && readFileSync(got.file).equals(image)).toBe(true);
    expect(await client.run('fw@9.9.9')).toEqual(refused(/fw@9\.9\.9 is not in the signed targets/));

    // A compromised server adds a target to the signed targets file without the targets key.
    const snapshot = JSON.parse(readFileSync(metadata(t, 'timestamp.json'), 'utf8')).signed.meta[
      'snapshot.json'
    ].version as number;
    const targetsFile = JSON.parse(readFileSync(metadata(t, `${snapshot}.snapshot.json`), 'utf8')).signed
      .meta['targets.json'].version as number;
    const forged = JSON.parse(readFileSync(metadata(t, `${targetsFile}.targets.json`), 'utf8'));
    forged.signed.targets['evil@6.6.6'] = forged.signed.targets['fw@1.0.0'];
    writeFileSync(metadata(t, `${targetsFile}.targets.json`), JSON.stringify(forged));
    const fresh = tufClient(t, device, undefined, rootJson(t));
    expect(await fresh.run('evil@6.6.6')).toEqual(refused(/hash|length|signed by 0\/1/i));
  });

  it('refuses an expired timestamp (a freeze), and the server re-signs it before expiry when its clock moves', async () => {
    // The server's clock three days behind: what it signs expired two days ago for the client.
    t = await tufServer({ start: Date.now() - 3 * DAY });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const client = tufClient(t, device, undefined, rootJson(t));
    expect(await client.run('fw@1.0.0')).toEqual(refused(/timestamp.*expired|expired.*timestamp/i));
    t.clock.set(Date.now());
    expect(await t.server.tuf?.tick()).toBe(true);
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });
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
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });
    const old = readFileSync(metadata(t, 'timestamp.json'));
    await deviceWithRelease(t, 'dev-2', { name: 'fw', version: '1.1.0', bytes: Buffer.from('one one zero') });
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });
    writeFileSync(metadata(t, 'timestamp.json'), old);
    expect(await client.run('fw@1.0.0')).toEqual(refused(/version/i));
  });

  it('refuses a replayed old snapshot: validly signed, but not the one the timestamp names', async () => {
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
    expect(await tufClient(t, device, undefined, rootJson(t)).run('fw@1.0.0')).toEqual(
      refused(/hash|length|version/i),
    );
  });

  it('refuses an image changed on the server after it was signed', async () => {
    t = await tufServer({ start: Date.now() });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const blob = new FsBlobStore(t.dataDir, t.clock).path(imageSha256);
    const swapped = Buffer.from(image);
    swapped[100] = swapped[100]! ^ 1;
    writeFileSync(blob, swapped);
    expect(await tufClient(t, device, undefined, rootJson(t)).run('fw@1.0.0')).toEqual(
      refused(/hash|mismatch/i),
    );
  });

  it('takes a k-of-n root rotation through the signed chain; refuses a root below threshold and a rolled-back root', async () => {
    const start = Date.now();
    t = await tufServer({ start, threshold: 2, keys: 3 });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const client = tufClient(t, device, undefined, rootJson(t));
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });

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

    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });
    const trusted = JSON.parse(readFileSync(join(client.metadataDir, 'root.json'), 'utf8'));
    expect(trusted.signed.version).toBe(2);
    expect(trusted.signed.roles.root.keyids.sort()).toEqual(newKeys.map((k) => k.keyID).sort());

    // A compromised server offers the old root 1 as the next one (a rollback to keys it may hold): refused.
    const rootDir = join(t.dataDir, 'tuf', 'root');
    writeFileSync(join(rootDir, '3.root.json'), readFileSync(join(rootDir, '1.root.json')));
    expect(await client.run('fw@1.0.0')).toEqual(refused(/version|signed by [01]\/2/i));

    // A version 3 signed by one new key only is below the threshold of 2: refused.
    const three = nextRoot(two, { now: start });
    await signRoot(three, [newKeyFiles[0]!]);
    writeFileSync(join(rootDir, '3.root.json'), JSON.stringify(three.toJSON()));
    expect(await client.run('fw@1.0.0')).toEqual(refused(/root was signed by 1\/2 keys/));
    expect(JSON.parse(readFileSync(join(client.metadataDir, 'root.json'), 'utf8')).signed.version).toBe(2);
  });

  it('revokes stolen online keys through the next root: the client refuses metadata the old keys sign', async () => {
    const start = Date.now();
    t = await tufServer({ start });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const before = tufClient(t, device, undefined, rootJson(t));
    expect(await before.run('fw@1.0.0')).toMatchObject({ ok: true });
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
    // The same trusted metadata, the restarted server's address.
    const client = tufClient(t, device, before.metadataDir);
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });
    expect(JSON.parse(readFileSync(join(client.metadataDir, 'root.json'), 'utf8')).signed.version).toBe(2);

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
    expect(await client.run('fw@1.0.0')).toEqual(refused(/timestamp was signed by 0\/1 keys/));
  });

  it('rotates the targets key, revoking the stolen one: after the next timestamp the client refuses what it signs', async () => {
    const start = Date.now();
    t = await tufServer({ start });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const client = tufClient(t, device, undefined, rootJson(t));
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });
    const keys = join(t.dataDir, 'tuf', 'keys');
    const stolen = await readTufSigner(join(keys, 'targets.key'));

    const rotate = async () => {
      const r = await t!.api('POST', '/api/v1/tuf/keys/targets/rotate');
      expect(r.status, await r.clone().text()).toBe(201);
      return (await r.json()) as { key_id: string; key: Record<string, unknown>; root_version: number };
    };
    const made = await rotate();
    expect(made.root_version).toBe(1);
    expect((await rotate()).key_id).toBe(made.key_id);
    expect((await t.api('POST', '/api/v1/tuf/keys/root/rotate')).status).toBe(400);

    // The offline holders name the new key in root version 2; the server signs with it once it is installed.
    const two = nextRoot(await readRootFile(t.ceremony.rootFile), {
      now: start,
      roleKeys: { targets: [Key.fromJSON(made.key_id, made.key as never)] },
    });
    await signRoot(two, t.ceremony.rootKeyFiles.slice(0, 2));
    const installed = await t.api('POST', '/api/v1/tuf/root', two.toJSON());
    expect(installed.status, await installed.clone().text()).toBe(201);
    expect((await readTufSigner(join(keys, 'targets.key'))).keyId).toBe(made.key_id);
    const state = (await (await t.api('GET', '/api/v1/tuf')).json()) as { keys: { targets: string } };
    expect(state.keys.targets).toBe(made.key_id);
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true });

    // The thief of the old targets key, holding the server (its snapshot and timestamp keys), adds a target.
    const snapshotSigner = await readTufSigner(join(keys, 'snapshot.key'));
    const timestampSigner = await readTufSigner(join(keys, 'timestamp.key'));
    const ts = JSON.parse(readFileSync(metadata(t, 'timestamp.json'), 'utf8')).signed;
    const snapVersion = ts.meta['snapshot.json'].version as number;
    const snap = JSON.parse(readFileSync(metadata(t, `${snapVersion}.snapshot.json`), 'utf8')).signed;
    const targetsVersion = snap.meta['targets.json'].version as number;
    const targets = Metadata.fromJSON(
      MetadataKind.Targets,
      JSON.parse(readFileSync(metadata(t, `${targetsVersion}.targets.json`), 'utf8')),
    );
    const evil = new Targets({
      version: targetsVersion + 1,
      specVersion: '1.0.31',
      expires: targets.signed.expires,
      targets: { ...targets.signed.targets, 'evil@6.6.6': targets.signed.targets['fw@1.0.0']! },
    });
    const signAndWrite = (md: Metadata<Targets | Snapshot | Timestamp>, by: typeof stolen, name: string) => {
      md.sign(by.sign, false);
      const bytes = Buffer.from(JSON.stringify(md.toJSON()));
      writeFileSync(metadata(t!, name), bytes);
      return new MetaFile({
        version: md.signed.version,
        length: bytes.length,
        hashes: { sha256: createHash('sha256').update(bytes).digest('hex') },
      });
    };
    const targetsMeta = signAndWrite(new Metadata(evil), stolen, `${targetsVersion + 1}.targets.json`);
    const snapshotMeta = signAndWrite(
      new Metadata(
        new Snapshot({
          version: snapVersion + 1,
          specVersion: '1.0.31',
          expires: snap.expires,
          meta: { 'targets.json': targetsMeta },
        }),
      ),
      snapshotSigner,
      `${snapVersion + 1}.snapshot.json`,
    );
    signAndWrite(
      new Metadata(
        new Timestamp({ version: ts.version + 1, specVersion: '1.0.31', expires: ts.expires, snapshotMeta }),
      ),
      timestampSigner,
      'timestamp.json',
    );
    expect(await client.run('evil@6.6.6')).toEqual(refused(/targets was signed by 0\/1 keys/));
  });

  it('with a root that requires the offline CI targets key, refuses targets the server signed alone until CI signs them', async () => {
    const start = Date.now();
    t = await tufServer({ start });
    const device = await deviceWithRelease(t, 'dev-1', release);
    const client = tufClient(t, device, undefined, rootJson(t));
    const ciFile = join(tempDir('fleetd-tuf-ci-'), 'ci-targets.key');
    const ciKey = await writeNewTufKey(ciFile);
    const two = nextRoot(await readRootFile(t.ceremony.rootFile), {
      now: start,
      offlineTargetsKeys: [ciKey],
    });
    expect(two.signed.roles.targets?.threshold).toBe(2);
    // Rotating the server's targets key by replacing the role's keys would drop CI's: refused, not a dead root.
    expect(() => nextRoot(two, { now: start, roleKeys: { targets: [ciKey] } })).toThrow(
      /the targets role would need 2 signatures from 1 key/,
    );
    await signRoot(two, t.ceremony.rootKeyFiles.slice(0, 2));
    expect((await t.api('POST', '/api/v1/tuf/root', two.toJSON())).status).toBe(201);
    expect(await client.run('fw@1.0.0')).toEqual(refused(/targets was signed by 1\/2 keys/));

    // CI fetches the current targets as any client would, checks and signs them, and hands the signature back.
    const get = async (name: string) =>
      (await (await fetch(`${t!.server.url}/api/device/v1/tuf/${name}`)).json()) as {
        signed: { meta: Record<string, { version: number }> };
      };
    const ciSign = async () => {
      const snapshot = (await get('timestamp.json')).signed.meta['snapshot.json']!.version;
      const version = (await get(`${snapshot}.snapshot.json`)).signed.meta['targets.json']!.version;
      const md = Metadata.fromJSON(MetadataKind.Targets, (await get(`${version}.targets.json`)) as never);
      const ci = await readTufSigner(ciFile);
      md.sign(ci.sign, true);
      const signature = md.signatures[ci.keyId]!;
      return { version, signature: { keyid: signature.keyID, sig: signature.sig } };
    };
    const { version, signature } = await ciSign();
    const stranger = await readTufSigner(join(t.dataDir, 'tuf', 'keys', 'snapshot.key'));
    const wrongKey = { ...signature, keyid: stranger.keyId };
    const refusedKey = await t.api('POST', '/api/v1/tuf/targets/signatures', {
      version,
      signatures: [wrongKey],
    });
    expect(refusedKey.status).toBe(400);
    expect(await refusedKey.text()).toMatch(/is not a targets key of root version 2/);
    const forged = {
      ...signature,
      sig: signature.sig.replace(/^../, signature.sig.startsWith('00') ? '11' : '00'),
    };
    expect(
      (await t.api('POST', '/api/v1/tuf/targets/signatures', { version, signatures: [forged] })).status,
    ).toBe(400);
    expect(
      (
        await t.api('POST', '/api/v1/tuf/targets/signatures', {
          version: version + 5,
          signatures: [signature],
        })
      ).status,
    ).toBe(409);
    const added = await t.api('POST', '/api/v1/tuf/targets/signatures', { version, signatures: [signature] });
    expect(added.status, await added.clone().text()).toBe(200);
    expect(await added.json()).toEqual({ version, signatures: 2 });
    expect(await client.run('fw@1.0.0')).toMatchObject({ ok: true, sha256: imageSha256 });

    // A new release the server signs alone (say, uploaded by whoever holds the server) is refused.
    const other = await deviceWithRelease(t, 'dev-2', {
      name: 'fw',
      version: '1.1.0',
      bytes: Buffer.from('1.1'),
    });
    expect(await tufClient(t, other, undefined, rootJson(t)).run('fw@1.1.0')).toEqual(
      refused(/targets was signed by 1\/2 keys/),
    );
  });
});
