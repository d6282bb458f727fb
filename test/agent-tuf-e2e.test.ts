/**
 * A real `fleetd agent` process provisioned with a TUF root installs a release from a real server process
 * only after tuf-js has verified it as a signed target; its trusted metadata stays in its state folder. The
 * same agent process, never provisioned again, follows a root rotation to new root keys that also revokes the
 * targets key, and installs the next release signed by the new key; with a root that requires the offline CI
 * targets key it refuses a release the server signed alone, and installs it once CI has signed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Key, Metadata, MetadataKind, type Root } from '@tufjs/models';
import { afterAll, describe, expect, it } from 'vitest';
import { readTufSigner, writeNewTufKey } from '../src/artifacts/tuf/tuf-keys.js';
import {
  initRoot,
  nextRoot,
  type RootInitResult,
  readRootFile,
  signRoot,
} from '../src/artifacts/tuf/tuf-root.js';
import { type Agent, startAgent } from './support/agents.js';
import { operator } from './support/fleet.js';
import { freePort, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { tufDataFolder } from './support/tuf.js';

let server: ServerProcess | undefined;
let agent: Agent | undefined;
// Shared by the rotation test, which continues where the first one ends.
let op: ReturnType<typeof operator> | undefined;
let ceremony: RootInitResult | undefined;
let stateDir = '';
let rootTwo: { root: Metadata<Root>; keyFile: string } | undefined;
let stranger: Agent | undefined;
afterAll(async () => {
  await agent?.kill('SIGKILL');
  await stranger?.kill('SIGKILL');
  await server?.kill();
});

describe('fleetd agent with --tuf-root', () => {
  it('installs a release that the TUF targets sign; a device trusting another root refuses it', async () => {
    ceremony = await initRoot({
      out: tempDir('fleetd-tuf-ceremony-'),
      threshold: 1,
      keys: 1,
      now: Date.now(),
    });
    const data = tufDataFolder(ceremony);
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
    await op.upload('name=tuf-fw&version=1.0.0&hardware=pos-x200', randomBytes(64 * 1024));

    agent = await startAgent(op, 'tuf-1', { firmware: '0.9.0', flags: ['--tuf-root', ceremony.rootFile] });
    stateDir = agent.stateDir;
    const assigned = await op.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
      release: 'tuf-fw@1.0.0',
      devices: ['tuf-1'],
    });
    const done = await op.waitForUpdate(assigned.body.assigned[0]!.id, [
      'succeeded',
      'failed',
      'rolled_back',
    ]);
    expect(done.state, agent.output()).toBe('succeeded');
    expect(existsSync(join(stateDir, 'tuf', 'timestamp.json'))).toBe(true);
    const targets = readFileSync(join(stateDir, 'tuf', 'targets.json'), 'utf8');
    expect(JSON.parse(targets).signed.targets['tuf-fw@1.0.0']).toBeDefined();

    // A device whose root is another repository's refuses the same release, pinned key or not.
    const other = await initRoot({
      out: tempDir('fleetd-tuf-other-'),
      threshold: 1,
      keys: 1,
      now: Date.now(),
    });
    stranger = await startAgent(op, 'tuf-2', { firmware: '0.9.0', flags: ['--tuf-root', other.rootFile] });
    const refused = await op.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
      release: 'tuf-fw@1.0.0',
      devices: ['tuf-2'],
    });
    const failed = await op.waitForUpdate(refused.body.assigned[0]!.id, [
      'succeeded',
      'failed',
      'rolled_back',
    ]);
    expect(failed.state).toBe('failed');
    expect(String(failed.error)).toMatch(/TUF metadata refused/);
  });

  it('survives a root rotation that revokes the targets key, without being provisioned again', async () => {
    expect(op && ceremony && agent, 'the first test set the fleet up').toBeTruthy();
    const api = op!;
    // The server makes the new targets key; the holders name it, and a new root key, in root version 2.
    const made = await api.call<{ key_id: string; key: Record<string, unknown> }>(
      'POST',
      '/api/v1/tuf/keys/targets/rotate',
    );
    expect(made.status).toBe(201);
    const newRootFile = join(tempDir('fleetd-tuf-new-root-'), 'root-new.key');
    const newRootKey = await writeNewTufKey(newRootFile);
    const two = nextRoot(await readRootFile(ceremony!.rootFile), {
      now: Date.now(),
      rootKeys: [newRootKey],
      threshold: 1,
      roleKeys: { targets: [Key.fromJSON(made.body.key_id, made.body.key as never)] },
    });
    await signRoot(two, [ceremony!.rootKeyFiles[0]!, newRootFile]);
    const installed = await api.call('POST', '/api/v1/tuf/root', two.toJSON());
    expect(installed.status, JSON.stringify(installed.body)).toBe(201);
    rootTwo = { root: two, keyFile: newRootFile };

    await api.upload('name=tuf-fw&version=2.0.0&hardware=pos-x200', randomBytes(64 * 1024));
    const assigned = await api.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
      release: 'tuf-fw@2.0.0',
      devices: ['tuf-1'],
    });
    const done = await api.waitForUpdate(assigned.body.assigned[0]!.id, [
      'succeeded',
      'failed',
      'rolled_back',
    ]);
    expect(done.state, agent!.output()).toBe('succeeded');
    // The agent trusts root 2 now, reached through the signed chain, and targets signed by the new key alone.
    const root = JSON.parse(readFileSync(join(stateDir, 'tuf', 'root.json'), 'utf8'));
    expect(root.signed.version).toBe(2);
    expect(root.signed.roles.root.keyids).toEqual([newRootKey.keyID]);
    const targets = JSON.parse(readFileSync(join(stateDir, 'tuf', 'targets.json'), 'utf8'));
    expect(targets.signatures.map((x: { keyid: string }) => x.keyid)).toEqual([made.body.key_id]);
    expect(targets.signed.targets['tuf-fw@2.0.0']).toBeDefined();
  });

  it('refuses a release signed only by the online key when the root requires the offline CI key; installs it once CI signs', async () => {
    expect(rootTwo, 'the rotation test installed root 2').toBeDefined();
    const api = op!;
    const ciFile = join(tempDir('fleetd-tuf-ci-'), 'ci.key');
    const three = nextRoot(rootTwo!.root, {
      now: Date.now(),
      offlineTargetsKeys: [await writeNewTufKey(ciFile)],
    });
    await signRoot(three, [rootTwo!.keyFile]);
    expect((await api.call('POST', '/api/v1/tuf/root', three.toJSON())).status).toBe(201);

    await api.upload('name=tuf-fw&version=3.0.0&hardware=pos-x200', randomBytes(64 * 1024));
    const assign = async () => {
      const a = await api.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
        release: 'tuf-fw@3.0.0',
        devices: ['tuf-1'],
      });
      expect(a.body.assigned, JSON.stringify(a.body)).toHaveLength(1);
      return api.waitForUpdate(a.body.assigned[0]!.id, ['succeeded', 'failed', 'rolled_back']);
    };
    const refused = await assign();
    expect(refused.state).toBe('failed');
    expect(String(refused.error)).toMatch(/TUF metadata refused: .*targets was signed by 1\/2 keys/);

    // CI signs the server's current targets (what `fleetd keys sign-targets` does); the same agent installs.
    const get = async (name: string) => (await fetch(`${server!.url}/api/device/v1/tuf/${name}`)).json();
    const ts = (await get('timestamp.json')) as { signed: { meta: Record<string, { version: number }> } };
    const snap = (await get(`${ts.signed.meta['snapshot.json']!.version}.snapshot.json`)) as typeof ts;
    const version = snap.signed.meta['targets.json']!.version;
    const targets = Metadata.fromJSON(MetadataKind.Targets, (await get(`${version}.targets.json`)) as never);
    const ci = await readTufSigner(ciFile);
    targets.sign(ci.sign, true);
    const sig = targets.signatures[ci.keyId]!;
    const added = await api.call('POST', '/api/v1/tuf/targets/signatures', {
      version,
      signatures: [{ keyid: sig.keyID, sig: sig.sig }],
    });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    const done = await assign();
    expect(done.state, agent!.output()).toBe('succeeded');
  });
});
