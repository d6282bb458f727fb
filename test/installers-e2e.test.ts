/**
 * Multi-component releases with a real `fleetd server` and a real `fleetd agent --installers`: a bundle of a
 * configuration file (replaced in place) and a Debian package (dpkg into a throwaway root) installs whole; the
 * next bundle, whose second component dpkg refuses, is rolled back whole: the device keeps its old
 * configuration, its old package and its old release, and the update fails naming the component.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, activeVersion, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { buildBundle, buildDeb, dpkgRoot, installedDemo, missingTools } from './support/updaters.js';

const missing = missingTools(['dpkg', 'dpkg-deb', 'dpkg-query']);
let server: ServerProcess;
let agent: Agent;
let op: Operator;
const work = tempDir('fleetd-bundle-e2e-');
const stateDir = join(work, 'agent');
const configFile = join(work, 'etc', 'app.conf');
let root: string;

const activeRelease = () => activeVersion(stateDir);

/** A bundle release `stack@VERSION`: the configuration first, then the package. */
async function uploadStack(version: string, deb: string): Promise<void> {
  const bundle = await buildBundle(
    work,
    `stack-${version}`,
    {
      components: [
        { name: 'config', type: 'file', version, file: 'app.conf', order: 1 },
        { name: 'fleetd-demo', type: 'package', version, file: 'app.deb', order: 2 },
      ],
    },
    { 'app.conf': `config ${version}\n`, 'app.deb': readFileSync(deb) },
  );
  await op.upload(`name=stack&version=${version}&type=bundle&hardware=box`, readFileSync(bundle));
}

async function rollTo(version: string) {
  const created = await op.call<{ id: string }>('POST', '/api/v1/rollouts', {
    name: `stack ${version}`,
    release: `stack@${version}`,
    filter: 'id=dev-1',
    strategy: 'immediate',
  });
  expect(created.status).toBe(201);
  return eventually(
    `the update to stack ${version} to finish`,
    async () => {
      const { body } = await op.call<{
        updates: Array<{ state: string; error: string | null; attempts: number }>;
      }>('GET', `/api/v1/rollouts/${created.body.id}/updates`);
      const u = body.updates[0];
      // a failed attempt goes back to pending, with its error, for the server's retry later
      if (u && (['succeeded', 'failed', 'rolled_back'].includes(u.state) || u.error !== null)) return u;
      throw new Error(`last seen ${JSON.stringify(u)}\nagent:\n${agent.output().slice(-2000)}`);
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}

describe.skipIf(missing.length > 0)(
  `bundles of components with a real agent${missing.length ? ` (skipped: ${missing})` : ''}`,
  () => {
    beforeAll(async () => {
      const data = tempDir();
      server = await spawnServer(data, [
        '--heartbeat-interval',
        '1s',
        '--engine-interval',
        '200ms',
        '--log-level',
        'warn',
      ]);
      op = operator(server.url, data);
      root = dpkgRoot(work);
      writeFileSync(
        join(work, 'installers.json'),
        JSON.stringify({ file: { targets: { config: configFile } }, package: { root } }),
      );
      await uploadStack('1.0.0', buildDeb(work, '1.0.0'));
      await uploadStack('2.0.0', buildDeb(work, '2.0.0', 'fleetd-not-installed'));
      // online before a rollout: a rollout targets the devices its filter matches when it is created
      agent = await startAgent(op, 'dev-1', {
        hardware: 'box',
        firmware: '0.9.0',
        stateDir,
        flags: ['--installers', join(work, 'installers.json')],
      });
    }, 60_000);

    afterAll(async () => {
      await agent?.kill();
      await server?.kill();
    });

    it('installs a bundle of a file and a package, then rolls a bundle whose package fails back whole', async () => {
      const first = await rollTo('1.0.0');
      expect(first).toMatchObject({ state: 'succeeded', error: null });
      expect(activeRelease()).toBe('1.0.0');
      expect(readFileSync(configFile, 'utf8')).toBe('config 1.0.0\n');
      expect(installedDemo(root)).toBe('1.0.0');

      const second = await rollTo('2.0.0');
      expect(second.state).not.toBe('succeeded'); // failed, or pending again for the server's retry
      expect(second.error).toBe(
        'component 2 (fleetd-demo 2.0.0): dpkg -i failed: exit 1 (dpkg: error processing package fleetd-demo (--install):); rolled back config',
      );
      expect(activeRelease()).toBe('1.0.0');
      expect(readFileSync(configFile, 'utf8')).toBe('config 1.0.0\n');
      expect(installedDemo(root)).toBe('1.0.0');
      const device = await op.call<{ firmware_version: string }>('GET', '/api/v1/devices/dev-1');
      expect(device.body.firmware_version).toBe('1.0.0');
    }, 120_000);
  },
);
