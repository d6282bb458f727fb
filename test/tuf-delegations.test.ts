/**
 * Delegated targets roles seen by tuf-js as an independent client, a separate program (support/
 * tuf-client-program.mjs): a product line's release is trusted only once its team's key signed the role's
 * metadata; a signature below the role's threshold, a team's key that is not the delegation's and the server's
 * own targets key are refused; another product line is unaffected; a terminating delegation stops the client
 * from asking later roles; a removed delegation hands its releases back to the top-level targets.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata, MetadataKind, MetaFile, Snapshot, TargetFile, Targets, Timestamp } from '@tufjs/models';
import { afterEach, describe, expect, it } from 'vitest';
import { readTufSigner, writeNewTufKey } from '../src/artifacts/tuf/tuf-keys.js';
import { tempDir } from './support/processes.js';
import { deviceWithRelease, startTufServer, type TufServer, tufClient, tufServer } from './support/tuf.js';

const DAY = 86_400_000;
const pos = { name: 'pos-firmware', version: '2.3.0', bytes: Buffer.from('pos firmware 2.3.0 '.repeat(500)) };
const kiosk = { name: 'kiosk-app', version: '1.0.0', bytes: Buffer.from('kiosk app 1.0.0 '.repeat(500)) };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let t: TufServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const rootJson = (s: TufServer) => readFileSync(s.ceremony.rootFile, 'utf8');
const refused = (error: RegExp) => ({ ok: false, error: expect.stringMatching(error) });
const metadataPath = (s: TufServer, name: string) => join(s.dataDir, 'tuf', 'metadata', name);
const readMetadata = (s: TufServer, name: string) => JSON.parse(readFileSync(metadataPath(s, name), 'utf8'));

/** A team's key file and the public PEM an operator delegates to. */
async function teamKey(label: string) {
  const file = join(tempDir(`fleetd-tuf-team-${label}-`), 'team.key');
  const key = await writeNewTufKey(file);
  const pem = createPublicKey(readFileSync(file)).export({ type: 'spki', format: 'pem' }).toString();
  return { file, keyId: key.keyID, pem };
}

type View = {
  name: string;
  version: number | null;
  signed_version: number | null;
  targets: string[];
  awaiting_signature: boolean;
  expires: string | null;
};

async function delegate(s: TufServer, name: string, body: Record<string, unknown>): Promise<View> {
  const r = await s.api('PUT', `/api/v1/tuf/delegations/${name}`, body);
  expect(r.status, await r.clone().text()).toBe(200);
  return (await r.json()) as View;
}

/** What `fleetd keys sign-delegated` does: fetch the role's newest metadata as published and sign it. */
async function teamSignature(s: TufServer, name: string, version: number, keyFile: string) {
  const md = Metadata.fromJSON(MetadataKind.Targets, readMetadata(s, `${version}.${name}.json`));
  const signer = await readTufSigner(keyFile);
  md.sign(signer.sign, true);
  const sig = md.signatures[signer.keyId]!;
  return { keyid: sig.keyID, sig: sig.sig };
}

const postSignatures = (s: TufServer, name: string, version: number, signatures: unknown[]) =>
  s.api('POST', `/api/v1/tuf/delegations/${name}/signatures`, { version, signatures });

/**
 * A compromised server (holding the online keys) publishes a role's next version signed by `signer`, listing
 * `targets`, and re-signs snapshot and timestamp over it.
 */
async function forgeRole(
  s: TufServer,
  role: string,
  signer: { sign: (data: Buffer) => import('@tufjs/models').Signature },
  targets: Record<string, { length: number; sha256: string }>,
) {
  const keys = join(s.dataDir, 'tuf', 'keys');
  const snapshotSigner = await readTufSigner(join(keys, 'snapshot.key'));
  const timestampSigner = await readTufSigner(join(keys, 'timestamp.key'));
  const ts = readMetadata(s, 'timestamp.json').signed;
  const snapVersion = ts.meta['snapshot.json'].version as number;
  const snap = readMetadata(s, `${snapVersion}.snapshot.json`).signed;
  const version = (snap.meta[`${role}.json`]?.version ?? 0) + 10;
  const forged = new Targets({ version, specVersion: '1.0.31', expires: snap.expires });
  for (const [path, f] of Object.entries(targets)) {
    forged.addTarget(new TargetFile({ path, length: f.length, hashes: { sha256: f.sha256 } }));
  }
  const write = (md: Metadata<Targets | Snapshot | Timestamp>, by: typeof signer, name: string) => {
    md.sign(by.sign, false);
    const bytes = Buffer.from(JSON.stringify(md.toJSON()));
    writeFileSync(metadataPath(s, name), bytes);
    return new MetaFile({
      version: md.signed.version,
      length: bytes.length,
      hashes: { sha256: sha256(bytes) },
    });
  };
  const roleMeta = write(new Metadata(forged), signer, `${version}.${role}.json`);
  const meta: Record<string, MetaFile> = {};
  for (const [name, m] of Object.entries(snap.meta as Record<string, Record<string, unknown>>)) {
    meta[name] = MetaFile.fromJSON(m as never);
  }
  meta[`${role}.json`] = roleMeta;
  const snapshotMeta = write(
    new Metadata(
      new Snapshot({ version: snapVersion + 1, specVersion: '1.0.31', expires: snap.expires, meta }),
    ),
    snapshotSigner,
    `${snapVersion + 1}.snapshot.json`,
  );
  write(
    new Metadata(
      new Timestamp({ version: ts.version + 1, specVersion: '1.0.31', expires: ts.expires, snapshotMeta }),
    ),
    timestampSigner,
    'timestamp.json',
  );
}

describe('delegated targets roles, refreshed by tuf-js as a separate program', () => {
  it("trusts a product line's release only once its team signed it; other product lines are unaffected", async () => {
    t = await tufServer({ start: Date.now() });
    const posDevice = await deviceWithRelease(t, 'pos-1', pos);
    const kioskDevice = await deviceWithRelease(t, 'kiosk-1', kiosk);
    const team = await teamKey('pos');
    const d = await delegate(t, 'pos', { paths: ['pos-firmware@*'], keys: [team.pem], threshold: 1 });
    expect(d).toMatchObject({ version: 1, signed_version: null, targets: ['pos-firmware@2.3.0'] });
    expect(d.awaiting_signature).toBe(true);

    // The top-level targets delegate the product line and no longer list its release.
    const snapshot = readMetadata(t, 'timestamp.json').signed.meta['snapshot.json'].version;
    const top = readMetadata(
      t,
      `${readMetadata(t, `${snapshot}.snapshot.json`).signed.meta['targets.json'].version}.targets.json`,
    );
    expect(Object.keys(top.signed.targets)).toEqual(['kiosk-app@1.0.0']);
    expect(top.signed.delegations.roles).toEqual([
      { name: 'pos', keyids: [team.keyId], threshold: 1, paths: ['pos-firmware@*'], terminating: false },
    ]);

    const posClient = tufClient(t, posDevice, undefined, rootJson(t));
    expect(await posClient.run('pos-firmware@2.3.0')).toEqual(refused(/pos was signed by 0\/1 keys/));
    expect(await tufClient(t, kioskDevice, undefined, rootJson(t)).run('kiosk-app@1.0.0')).toMatchObject({
      ok: true,
      sha256: sha256(kiosk.bytes),
    });

    // The server refuses a key that is not the delegation's, and a signature that does not verify.
    const stranger = await teamKey('stranger');
    const wrong = await postSignatures(t, 'pos', 1, [await teamSignature(t, 'pos', 1, stranger.file)]);
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toMatch(/is not a key of delegated role pos/);
    const good = await teamSignature(t, 'pos', 1, team.file);
    const bent = { ...good, sig: good.sig.replace(/^../, good.sig.startsWith('00') ? '11' : '00') };
    expect((await postSignatures(t, 'pos', 1, [bent])).status).toBe(400);
    expect((await postSignatures(t, 'pos', 7, [good])).status).toBe(409);

    const signed = await postSignatures(t, 'pos', 1, [good]);
    expect(signed.status, await signed.clone().text()).toBe(200);
    expect(await signed.json()).toEqual({
      name: 'pos',
      version: 1,
      signatures: 1,
      threshold: 1,
      published: true,
    });
    const fresh = tufClient(t, posDevice, undefined, rootJson(t));
    expect(await fresh.run('pos-firmware@2.3.0')).toMatchObject({ ok: true, sha256: sha256(pos.bytes) });

    // A new release of the line waits for the team; the signed one stays trusted meanwhile.
    const next = await deviceWithRelease(t, 'pos-2', {
      ...pos,
      version: '2.4.0',
      bytes: Buffer.from('2.4.0'),
    });
    const state = (await (await t.api('GET', '/api/v1/tuf')).json()) as { delegations: View[] };
    expect(state.delegations[0]).toMatchObject({
      name: 'pos',
      version: 2,
      signed_version: 1,
      awaiting_signature: true,
      targets: ['pos-firmware@2.3.0', 'pos-firmware@2.4.0'],
    });
    expect(state.delegations[0]!.expires).toMatch(/^\d{4}-/);
    expect(await fresh.run('pos-firmware@2.3.0')).toMatchObject({ ok: true });
    const nextClient = tufClient(t, next, undefined, rootJson(t));
    expect(await nextClient.run('pos-firmware@2.4.0')).toEqual(
      refused(/pos-firmware@2\.4\.0 is not in the signed targets/),
    );
    expect((await postSignatures(t, 'pos', 2, [await teamSignature(t, 'pos', 2, team.file)])).status).toBe(
      200,
    );
    expect(await nextClient.run('pos-firmware@2.4.0')).toMatchObject({ ok: true });

    // Whoever holds the server signs the role's metadata with the server's targets key: not the team's.
    await forgeRole(t, 'pos', await readTufSigner(join(t.dataDir, 'tuf', 'keys', 'targets.key')), {
      'pos-firmware@6.6.6': { length: pos.bytes.length, sha256: sha256(pos.bytes) },
    });
    expect(await nextClient.run('pos-firmware@6.6.6')).toEqual(refused(/pos was signed by 0\/1 keys/));
  });

  it('with a threshold of 2, one team signature is below it: the client refuses until the second', async () => {
    t = await tufServer({ start: Date.now() });
    const device = await deviceWithRelease(t, 'pos-1', pos);
    const [a, b] = [await teamKey('a'), await teamKey('b')];
    await delegate(t, 'pos', { paths: ['pos-*'], keys: [a.pem, b.pem], threshold: 2 });
    const one = await postSignatures(t, 'pos', 1, [await teamSignature(t, 'pos', 1, a.file)]);
    expect(await one.json()).toMatchObject({ signatures: 1, threshold: 2, published: false });
    const client = tufClient(t, device, undefined, rootJson(t));
    expect(await client.run('pos-firmware@2.3.0')).toEqual(refused(/pos was signed by 1\/2 keys/));
    const two = await postSignatures(t, 'pos', 1, [await teamSignature(t, 'pos', 1, b.file)]);
    expect(await two.json()).toMatchObject({ signatures: 2, published: true });
    expect(await client.run('pos-firmware@2.3.0')).toMatchObject({ ok: true });

    // The audit log keeps who may sign what, and each signature's count.
    const audit = (await (await t.api('GET', '/api/v1/audit')).json()) as {
      entries: Array<{ action: string; before: unknown; after: unknown }>;
    };
    const entry = (action: string) => audit.entries.filter((e) => e.action === action);
    expect(entry('PUT /api/v1/tuf/delegations/:name')[0]).toMatchObject({
      before: null,
      after: { name: 'pos', paths: ['pos-*'], key_ids: [a.keyId, b.keyId], threshold: 2, terminating: false },
    });
    expect(entry('POST /api/v1/tuf/delegations/:name/signatures').map((e) => e.after)).toEqual(
      expect.arrayContaining([{ role: 'pos', version: 1, signatures: 2 }]),
    );

    // A restart reads the delegation and its signed version back, and re-signs nothing the team must sign again.
    await t.close();
    t = await startTufServer(t.dataDir, t.ceremony, t.clock);
    const after = ((await (await t.api('GET', '/api/v1/tuf')).json()) as { delegations: View[] }).delegations;
    expect(after).toMatchObject([{ name: 'pos', version: 1, signed_version: 1, awaiting_signature: false }]);
    expect(await tufClient(t, device, client.metadataDir).run('pos-firmware@2.3.0')).toMatchObject({
      ok: true,
    });
  });

  it('a terminating delegation stops the client from taking its paths from a later role', async () => {
    t = await tufServer({ start: Date.now() });
    const device = await deviceWithRelease(t, 'pos-1', pos);
    const [posTeam, other] = [await teamKey('pos'), await teamKey('other')];
    await delegate(t, 'pos', { paths: ['pos-firmware@*'], keys: [posTeam.pem], terminating: true });
    await delegate(t, 'everything', { paths: ['*'], keys: [other.pem] });
    // The release is the pos role's alone: neither the top-level targets nor the later role list it.
    const views = ((await (await t.api('GET', '/api/v1/tuf/delegations')).json()) as { delegations: View[] })
      .delegations;
    expect(views.map((v) => [v.name, v.targets])).toEqual([
      ['pos', ['pos-firmware@2.3.0']],
      ['everything', []],
    ]);
    const signPos = async () =>
      expect(
        (await postSignatures(t!, 'pos', 1, [await teamSignature(t!, 'pos', 1, posTeam.file)])).status,
      ).toBe(200);
    await signPos();

    // The other team's key (or its thief) lists a pos release in its own role. The pos role, signed, does
    // not list it, and being terminating, the client asks no later role.
    const otherSigner = await readTufSigner(other.file);
    const evil = { 'pos-firmware@6.6.6': { length: pos.bytes.length, sha256: sha256(pos.bytes) } };
    await forgeRole(t, 'everything', otherSigner, evil);
    expect(await tufClient(t, device, undefined, rootJson(t)).run('pos-firmware@6.6.6')).toEqual(
      refused(/pos-firmware@6\.6\.6 is not in the signed targets/),
    );

    // Without terminating, the same forged role is enough.
    await delegate(t, 'pos', { paths: ['pos-firmware@*'], keys: [posTeam.pem], terminating: false });
    await forgeRole(t, 'everything', otherSigner, evil);
    expect(await tufClient(t, device, undefined, rootJson(t)).run('pos-firmware@6.6.6')).toMatchObject({
      ok: true,
    });
  });

  it('a removed delegation hands its releases back to the top-level targets, which the server signs', async () => {
    t = await tufServer({ start: Date.now() });
    const device = await deviceWithRelease(t, 'pos-1', pos);
    const team = await teamKey('pos');
    await delegate(t, 'pos', { paths: ['pos-firmware@*'], keys: [team.pem], terminating: true });
    const client = tufClient(t, device, undefined, rootJson(t));
    expect(await client.run('pos-firmware@2.3.0')).toEqual(refused(/pos was signed by 0\/1 keys/));
    const removed = await t.api('DELETE', '/api/v1/tuf/delegations/pos');
    expect(removed.status, await removed.clone().text()).toBe(200);
    expect(await client.run('pos-firmware@2.3.0')).toMatchObject({ ok: true });
    expect(
      ((await (await t.api('GET', '/api/v1/tuf')).json()) as { delegations: View[] }).delegations,
    ).toEqual([]);
    // Delegated again (a new key, say), the client that saw the old role follows.
    await delegate(t, 'pos', { paths: ['pos-firmware@*'], keys: [team.pem] });
    expect(await client.run('pos-firmware@2.3.0')).toEqual(refused(/pos was signed by 0\/1 keys/));
  });

  it('warns before a delegated role expires and writes the version for its team to renew at half its lifetime', async () => {
    const rules = join(tempDir('fleetd-tuf-alerts-'), 'alerts.yaml');
    writeFileSync(
      rules,
      'rules:\n  - name: tuf\n    kind: tuf_expiry\n    within: 30d\n    severity: critical\n',
    );
    t = await tufServer({ start: Date.now(), alertRulesFile: rules });
    await deviceWithRelease(t, 'pos-1', pos);
    const team = await teamKey('pos');
    await delegate(t, 'pos', { paths: ['pos-firmware@*'], keys: [team.pem] });
    await postSignatures(t, 'pos', 1, [await teamSignature(t, 'pos', 1, team.file)]);
    const view = async () =>
      ((await (await t!.api('GET', '/api/v1/tuf/delegations')).json()) as { delegations: View[] })
        .delegations[0]!;
    t.clock.advance(44 * DAY);
    await t.server.tuf!.tick();
    expect(await view()).toMatchObject({ version: 1, awaiting_signature: false });
    t.clock.advance(2 * DAY);
    await t.server.tuf!.tick();
    expect(await view()).toMatchObject({ version: 2, signed_version: 1, awaiting_signature: true });
    const events = () => t!.server.store.listEvents({ typePrefix: 'tuf.', limit: 100 });
    expect(await events()).toEqual([]);
    // 90-day lifetime: under a quarter (22.5 days) left and still not re-signed.
    t.clock.advance(22 * DAY);
    await t.server.tuf!.tick();
    await t.server.tuf!.tick();
    const warned = await events();
    expect(warned.map((e) => e.data)).toEqual([
      { role: 'pos', expires: (await view()).expires, delegated: true },
    ]);
    expect(warned[0]!.reason).toMatch(
      /the TUF delegated role pos expires in 2[12] days: its team signs the next version/,
    );
    await t.server.alerts!.evaluate();
    const firing = await t.server.store.listEvents({ typePrefix: 'alert.firing', limit: 10 });
    expect(firing.map((e) => e.data.key)).toEqual(['tuf/pos']);
  });

  it('refuses bad delegations with a 400 that says what is wrong, and an unknown role with a 404', async () => {
    t = await tufServer({ start: Date.now() });
    const team = await teamKey('pos');
    const put = async (name: string, body: Record<string, unknown>) => {
      const r = await t!.api('PUT', `/api/v1/tuf/delegations/${name}`, {
        paths: ['pos-firmware@*'],
        keys: [team.pem],
        ...body,
      });
      return { status: r.status, body: (await r.json()) as { error?: { code: string; message: string } } };
    };
    expect(await put('pos', { paths: ['pos/[a-z]{1,2}'] })).toMatchObject({
      status: 400,
      body: {
        error: {
          code: 'VALIDATION',
          message: expect.stringMatching(/paths: "pos\/\[a-z\]\{1,2\}" is not a pattern/),
        },
      },
    });
    expect(await put('pos', { keys: ['not a key'] })).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringMatching(/keys\[0\] is not an Ed25519 public key/) } },
    });
    expect(await put('targets', {})).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringMatching(/"targets" is not a delegated role name/) } },
    });
    expect(await put('pos', { threshold: 2 })).toMatchObject({
      status: 400,
      body: {
        error: { message: expect.stringMatching(/threshold must be from 1 to the number of keys, 1/) },
      },
    });
    expect((await t.api('GET', '/api/v1/tuf/delegations')).status).toBe(200);
    expect(
      ((await (await t.api('GET', '/api/v1/tuf/delegations')).json()) as { delegations: unknown[] })
        .delegations,
    ).toEqual([]);
    const gone = await t.api('DELETE', '/api/v1/tuf/delegations/nope');
    expect(gone.status).toBe(404);
    expect(await gone.text()).toMatch(/no delegated targets role nope/);
    const sig = { keyid: 'a'.repeat(64), sig: 'ab' };
    expect((await postSignatures(t, 'nope', 1, [sig])).status).toBe(404);
  });
});
