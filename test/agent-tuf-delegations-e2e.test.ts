/**
 * A real `fleetd agent` process provisioned with a TUF root, against a real server process whose top-level
 * targets delegate the product line `tuf-fw@*` to a team's key: the agent refuses the line's release while the
 * team has not signed the delegated role, and installs it once the team has (what `fleetd keys sign-delegated`
 * does), never provisioned again.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata, MetadataKind } from '@tufjs/models';
import { afterAll, describe, expect, it } from 'vitest';
import { readTufSigner, writeNewTufKey } from '../src/artifacts/tuf/tuf-keys.js';
import { initRoot } from '../src/artifacts/tuf/tuf-root.js';
import { type Agent, startAgent } from './support/agents.js';
import { operator } from './support/fleet.js';
import { freePort, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { tufDataFolder } from './support/tuf.js';

let server: ServerProcess | undefined;
let agent: Agent | undefined;
afterAll(async () => {
  await agent?.kill('SIGKILL');
  await server?.kill();
});

describe('fleetd agent with --tuf-root and a delegated product line', () => {
  it("refuses the line's release until its team signs the delegated role, then installs it", async () => {
    const ceremony = await initRoot({
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
    const op = operator(server.url, data);

    const teamFile = join(tempDir('fleetd-tuf-team-'), 'team.key');
    await writeNewTufKey(teamFile);
    const teamPem = createPublicKey(readFileSync(teamFile))
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const delegated = await op.call<{ version: number }>('PUT', '/api/v1/tuf/delegations/fw-team', {
      paths: ['tuf-fw@*'],
      keys: [teamPem],
      terminating: true,
    });
    expect(delegated.status, JSON.stringify(delegated.body)).toBe(200);
    await op.upload('name=tuf-fw&version=1.0.0&hardware=pos-x200', randomBytes(64 * 1024));

    agent = await startAgent(op, 'tuf-d1', { firmware: '0.9.0', flags: ['--tuf-root', ceremony.rootFile] });
    const assign = async () => {
      const a = await op.call<{ assigned: Array<{ id: string }> }>('POST', '/api/v1/updates/assign', {
        release: 'tuf-fw@1.0.0',
        devices: ['tuf-d1'],
      });
      expect(a.body.assigned, JSON.stringify(a.body)).toHaveLength(1);
      return op.waitForUpdate(a.body.assigned[0]!.id, ['succeeded', 'failed', 'rolled_back']);
    };
    const refused = await assign();
    expect(refused.state).toBe('failed');
    expect(String(refused.error)).toMatch(/TUF metadata refused: .*fw-team was signed by 0\/1 keys/);

    // The team fetches its role's newest metadata, signs it offline and hands the signature back.
    const views = await op.call<{ delegations: Array<{ version: number }> }>(
      'GET',
      '/api/v1/tuf/delegations',
    );
    const version = views.body.delegations[0]!.version;
    const md = Metadata.fromJSON(
      MetadataKind.Targets,
      (await (await fetch(`${server.url}/api/device/v1/tuf/${version}.fw-team.json`)).json()) as never,
    );
    expect(Object.keys(md.signed.targets)).toEqual(['tuf-fw@1.0.0']);
    const team = await readTufSigner(teamFile);
    md.sign(team.sign, true);
    const sig = md.signatures[team.keyId]!;
    const signed = await op.call('POST', '/api/v1/tuf/delegations/fw-team/signatures', {
      version,
      signatures: [{ keyid: sig.keyID, sig: sig.sig }],
    });
    expect(signed.status, JSON.stringify(signed.body)).toBe(200);

    const done = await assign();
    expect(done.state, agent.output()).toBe('succeeded');
    // The agent's trusted copy of the delegated role is the team-signed one.
    const trusted = JSON.parse(readFileSync(join(agent.stateDir, 'tuf', 'fw-team.json'), 'utf8'));
    expect(trusted.signatures.map((s: { keyid: string }) => s.keyid)).toEqual([team.keyId]);
  }, 180_000);
});
