/**
 * A real `fleetd agent` process provisioned with a TUF root installs a release from a real server process
 * only after tuf-js has verified it as a signed target; its trusted metadata stays in its state folder.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initRoot } from '../src/artifacts/tuf/tuf-root.js';
import { eventually } from './support/eventually.js';
import { operator } from './support/fleet.js';
import {
  type AgentProcess,
  freePort,
  type ServerProcess,
  spawnAgent,
  spawnServer,
  tempDir,
} from './support/processes.js';

let server: ServerProcess | undefined;
let agent: AgentProcess | undefined;
let stranger: AgentProcess | undefined;
afterAll(async () => {
  await agent?.kill('SIGKILL');
  await stranger?.kill('SIGKILL');
  await server?.kill();
});

describe('fleetd agent with --tuf-root', () => {
  it('installs a release that the TUF targets sign; a device trusting another root refuses it', async () => {
    const ceremony = await initRoot({
      out: tempDir('fleetd-tuf-ceremony-'),
      threshold: 1,
      keys: 1,
      now: Date.now(),
    });
    const data = tempDir();
    mkdirSync(join(data, 'tuf', 'root'), { recursive: true });
    mkdirSync(join(data, 'tuf', 'keys'), { recursive: true });
    copyFileSync(ceremony.rootFile, join(data, 'tuf', 'root', '1.root.json'));
    for (const [role, file] of Object.entries(ceremony.onlineKeyFiles)) {
      copyFileSync(file, join(data, 'tuf', 'keys', `${role}.key`));
    }
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
    const keys = await op.call<{ keys: Array<{ public_key: string }> }>('GET', '/api/v1/keys');
    const publicKeyFile = join(tempDir(), 'signing.pub');
    writeFileSync(publicKeyFile, keys.body.keys[0]!.public_key);
    const token = (await op.call<{ token: string }>('POST', '/api/v1/enrollment-tokens', {})).body.token;
    await op.upload('name=tuf-fw&version=1.0.0&hardware=pos-x200', randomBytes(64 * 1024));

    const stateDir = tempDir('fleetd-agent-');
    agent = spawnAgent([
      '--server',
      server.url,
      '--device-id',
      'tuf-1',
      '--hardware',
      'pos-x200',
      '--state-dir',
      stateDir,
      '--public-key',
      publicKeyFile,
      '--tuf-root',
      ceremony.rootFile,
      '--enroll-token',
      token,
      '--firmware',
      '0.9.0',
    ]);
    await eventually(
      'device tuf-1 to come online',
      async () =>
        (await op.call<{ status?: string }>('GET', '/api/v1/devices/tuf-1')).body.status === 'online',
    );
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
    const strangerState = tempDir('fleetd-agent-');
    const token2 = (await op.call<{ token: string }>('POST', '/api/v1/enrollment-tokens', {})).body.token;
    stranger = spawnAgent([
      '--server',
      server.url,
      '--device-id',
      'tuf-2',
      '--hardware',
      'pos-x200',
      '--state-dir',
      strangerState,
      '--public-key',
      publicKeyFile,
      '--tuf-root',
      other.rootFile,
      '--enroll-token',
      token2,
      '--firmware',
      '0.9.0',
    ]);
    await eventually(
      'device tuf-2 to come online',
      async () =>
        (await op.call<{ status?: string }>('GET', '/api/v1/devices/tuf-2')).body.status === 'online',
    );
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
});
