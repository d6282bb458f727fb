/**
 * Moving a fleet from the pinned key alone to TUF through a normal rollout (docs/signing.md, "Moving a fleet to
 * TUF"), with a real server process and real agents provisioned without any TUF root. `fleetd keys migrate` has
 * the server's root signed with the pinned release key; a rollout with `adopt_tuf: true` gives it to its
 * devices, which check that signature, verify the release with TUF and keep the root. Restarted without
 * `--tuf-root`, the migrated agent still holds releases to TUF: once the root requires the offline CI targets
 * key, it refuses a release the server signed alone, which a device that was not migrated installs. A root the
 * pinned key did not sign (a server that lies) is refused and not adopted.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readPrivateKeyFile, signManifest, writeKeyPairFiles } from '../src/artifacts/signing.js';
import { writeNewTufKey } from '../src/artifacts/tuf/tuf-keys.js';
import { initRoot, nextRoot, signRoot } from '../src/artifacts/tuf/tuf-root.js';
import { type Agent, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { freePort, runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { tufDataFolder } from './support/tuf.js';

let server: ServerProcess | undefined;
const agents: Agent[] = [];
afterAll(async () => {
  for (const agent of agents) await agent.kill('SIGKILL');
  await server?.kill();
});

type Done = { state: string; error?: unknown };

describe('fleetd keys migrate and adopt_tuf', () => {
  it('moves a device to TUF through a rollout; it stays on TUF across a restart, unlike a device not moved', async () => {
    const ceremony = await initRoot({
      out: tempDir('fleetd-tuf-ceremony-'),
      threshold: 1,
      keys: 1,
      now: Date.now(),
    });
    const data = tufDataFolder(ceremony);
    server = await spawnServer(data, [
      '--port',
      String(await freePort()),
      '--heartbeat-interval',
      '1s',
      '--log-level',
      'warn',
    ]);
    const op: Operator = operator(server.url, data);
    const cli = (args: string[]) => runCli(args, { FLEETD_SERVER: server!.url, FLEETD_TOKEN: op.token });
    await op.upload('name=mig-fw&version=1.0.0&hardware=pos-x200', randomBytes(32 * 1024));

    const states: Record<string, string> = {};
    /** The agent of `id`, on the state it had if it ran before. */
    const device = async (id: string) => {
      states[id] ??= tempDir('fleetd-agent-');
      const agent = await startAgent(op, id, { firmware: '0.9.0', stateDir: states[id] });
      agents.push(agent);
      return agent;
    };
    const rollout = async (name: string, release: string, filter: string, adoptTuf: boolean) => {
      const made = await op.call<{ id: string }>('POST', '/api/v1/rollouts', {
        name,
        release,
        filter,
        strategy: 'immediate',
        ...(adoptTuf ? { adopt_tuf: true } : {}),
      });
      return made;
    };
    const finished = async (id: string, made: { body: { id: string } }): Promise<Done> => {
      let done: Done | undefined;
      await eventually(`the update of ${id} in rollout ${made.body.id} to finish`, async () => {
        const { body } = await op.call<{ updates: Array<Done & { rollout_id: string | null }> }>(
          'GET',
          `/api/v1/updates?device=${id}`,
        );
        done = body.updates.find(
          (u) => u.rollout_id === made.body.id && ['succeeded', 'failed', 'rolled_back'].includes(u.state),
        );
        return done !== undefined;
      });
      return done!;
    };

    // Nothing is signed for migration yet: a rollout asking devices to adopt TUF is refused, naming the field.
    const early = await rollout('too early', 'mig-fw@1.0.0', 'id=mig-1', true);
    expect(early.status).toBe(400);
    expect(JSON.stringify(early.body)).toMatch(/adopt_tuf: no TUF root is signed for migration/);

    // A key the server does not trust cannot sign the migration; the server's own key can.
    const stranger = tempDir();
    await writeKeyPairFiles(stranger);
    const refused = cli(['keys', 'migrate', '--key', join(stranger, 'signing.key')]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(
      /signature: does not verify root version 1 with any release key this server trusts/,
    );
    const signed = cli(['keys', 'migrate']);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toMatch(/TUF root version 1 is signed for migration by the server's release key/);
    expect(cli(['keys', 'migrate', '--show']).stdout).toMatch(/TUF root version 1 is signed for migration/);

    // A server that hands out a root the pinned key did not sign: the device refuses it and adopts nothing.
    await device('mig-3');
    const honest = readFileSync(join(data, 'tuf', 'migration.json'), 'utf8');
    const lie = JSON.parse(honest);
    lie.signature = signManifest(lie.root, await readPrivateKeyFile(join(stranger, 'signing.key')));
    writeFileSync(join(data, 'tuf', 'migration.json'), JSON.stringify(lie));
    const liedTo = await rollout('lied to', 'mig-fw@1.0.0', 'id=mig-3', true);
    expect(liedTo.status).toBe(201);
    const lied = await finished('mig-3', liedTo);
    expect(lied.state).toBe('failed');
    expect(String(lied.error)).toMatch(/TUF migration: the root is not signed by the pinned release key/);
    expect(existsSync(join(states['mig-3']!, 'tuf-root.json'))).toBe(false);
    writeFileSync(join(data, 'tuf', 'migration.json'), honest);

    // The rollout that moves mig-1; mig-2 gets the same release without adopt_tuf.
    const migrated = await device('mig-1');
    await device('mig-2');
    const move = await rollout('move to TUF', 'mig-fw@1.0.0', 'id=mig-1', true);
    const stay = await rollout('stay', 'mig-fw@1.0.0', 'id=mig-2', false);
    expect([move.status, stay.status]).toEqual([201, 201]);
    const moved = await finished('mig-1', move);
    expect(moved.state, migrated.output()).toBe('succeeded');
    expect((await finished('mig-2', stay)).state).toBe('succeeded');
    expect(readFileSync(join(states['mig-1']!, 'tuf-root.json'), 'utf8')).toBe(
      readFileSync(join(data, 'tuf', 'root', '1.root.json'), 'utf8'),
    );
    expect(existsSync(join(states['mig-1']!, 'tuf', 'timestamp.json'))).toBe(true);
    expect(existsSync(join(states['mig-2']!, 'tuf-root.json'))).toBe(false);

    // Restarted, provisioned with nothing more than before: the migrated agent still checks TUF.
    await migrated.kill();
    await device('mig-1');
    // The root holders now require CI's offline targets key, which has not signed the next upload.
    const two = nextRoot(ceremony.root, {
      now: Date.now(),
      offlineTargetsKeys: [await writeNewTufKey(join(tempDir(), 'ci.key'))],
    });
    await signRoot(two, ceremony.rootKeyFiles);
    expect((await op.call('POST', '/api/v1/tuf/root', two.toJSON())).status).toBe(201);
    await op.upload('name=mig-fw&version=2.0.0&hardware=pos-x200', randomBytes(32 * 1024));
    const next = await rollout('next', 'mig-fw@2.0.0', 'id=mig-1 or id=mig-2', false);
    expect(next.status, JSON.stringify(next.body)).toBe(201);
    const onTuf = await finished('mig-1', next);
    expect(onTuf.state).toBe('failed');
    expect(String(onTuf.error)).toMatch(/TUF metadata refused: .*targets was signed by 1\/2 keys/);
    expect((await finished('mig-2', next)).state).toBe('succeeded');
  }, 300_000);
});
