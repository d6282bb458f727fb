/**
 * Remote configuration end to end: a real server process and a real `fleetd agent` with `--config-hook`. A document
 * set with `fleetd config set` before the agent first runs reaches it in its first heartbeat answer; the hook gets
 * it as a file and drift clears; a new version is applied in turn; a version the hook refuses is reported failed
 * with the hook's output and the device drifts, as `fleetd devices config` and the `config.drift` filter say.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Agent, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

let server: ServerProcess;
let data: string;
let op: Operator;
let agent: Agent | undefined;
const marks = tempDir('fleetd-config-');
const cli = (...args: string[]) => runCli(['--server', server.url, '--data', data, ...args]);

interface DeviceConfig {
  desired: { version: string; hash: string } | null;
  applied: { version: string; hash: string } | null;
  last_report: { result: string; hash: string; output: string | null } | null;
  drift: boolean;
}

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, ['--heartbeat-interval', '1s', '--log-level', 'warn']);
  op = operator(server.url, data);
  await op.call('POST', '/api/v1/devices/import', { devices: [{ id: 'cfg-1', tags: { lab: 'config' } }] });
});

afterAll(async () => {
  await agent?.kill('SIGKILL');
  await server?.kill();
});

/** The first version through the CLI; later ones through the API (each CLI start costs a Node start-up). */
function setConfigCli(document: object): void {
  const file = join(marks, 'site.json');
  writeFileSync(file, JSON.stringify(document));
  const r = cli('config', 'set', 'site', file, '--filter', 'tag.lab = config');
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^site: version 1 for tag.lab = config/);
}

async function setConfig(document: object): Promise<void> {
  const r = await op.call('PUT', '/api/v1/config/site', { document, filter: 'tag.lab = config' });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

/** The device's configuration once it reported on the desired hash. */
async function reported(): Promise<DeviceConfig> {
  return eventually(
    'the agent to report on the desired configuration',
    async () => {
      const s = (await op.call<DeviceConfig>('GET', '/api/v1/devices/cfg-1/config')).body;
      if (s.last_report?.hash !== s.desired?.hash)
        throw new Error(`${JSON.stringify(s)}; agent: ${agent?.output()}`);
      return s;
    },
    { timeoutMs: 20_000 },
  );
}

async function drifting(): Promise<string[]> {
  const filter = encodeURIComponent('config.drift = true');
  const r = await op.call<{ devices: Array<{ id: string }> }>('GET', `/api/v1/devices?filter=${filter}`);
  return r.body.devices.map((d) => d.id);
}

it('applies a document through the hook, then a new version, and reports a refused one as failed', async () => {
  setConfigCli({ ntp: 'pool.ntp.org', log: { level: 'info' } });
  const enrollToken = (
    await op.call<{ token: string }>('POST', '/api/v1/enrollment-tokens', { claim: 'tag.lab = config' })
  ).body.token;
  const applied = join(marks, 'applied.json');
  agent = await startAgent(op, 'cfg-1', {
    enrollToken,
    firmware: '1.0.0',
    flags: [
      '--no-telemetry',
      '--config-hook',
      `if grep -q '"refuse": true' "$FLEETD_CONFIG_FILE"; then echo "unknown key refuse" >&2; exit 3; fi; ` +
        `cp "$FLEETD_CONFIG_FILE" ${applied} && echo "reloaded $FLEETD_CONFIG_VERSION"`,
    ],
    online: false,
  });

  const first = await reported();
  // The CLI shows what the API does.
  expect(JSON.parse(cli('-o', 'json', 'devices', 'config', 'cfg-1').stdout)).toEqual(first);
  expect(first).toMatchObject({
    drift: false,
    applied: { version: 'site@1' },
    last_report: { result: 'applied', output: 'reloaded site@1\n' },
  });
  expect(JSON.parse(readFileSync(applied, 'utf8'))).toEqual({ ntp: 'pool.ntp.org', log: { level: 'info' } });
  expect(await drifting()).toEqual([]);

  await setConfig({ ntp: 'time.example.com', log: { level: 'debug' } });
  const second = await reported();
  expect(second).toMatchObject({ drift: false, applied: { version: 'site@2' } });
  expect(JSON.parse(readFileSync(applied, 'utf8'))).toEqual({
    ntp: 'time.example.com',
    log: { level: 'debug' },
  });

  await setConfig({ ntp: 'time.example.com', refuse: true });
  const refused = await reported();
  expect(refused).toMatchObject({
    drift: true,
    applied: { version: 'site@2' },
    last_report: { result: 'failed' },
  });
  expect(refused.last_report?.output).toContain('unknown key refuse');
  expect(refused.last_report?.output).toContain('exit 3');
  expect(await drifting()).toEqual(['cfg-1']);
  const shown = cli('devices', 'show', 'cfg-1');
  expect(shown.stdout).toMatch(/config\s+site@3 \(drift/);
}, 90_000);
