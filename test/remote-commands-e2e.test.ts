/**
 * Remote commands end to end: a real server process (heartbeats asked for once an hour, so nothing arrives by
 * polling) and real `fleetd agent` processes. Over HTTP, commands queued before the agent starts reach it in its
 * first heartbeat answer: the reboot hook runs (a harmless command, never a real reboot), collected logs are
 * uploaded and downloaded with `fleetd commands logs`, a script signed with the release key by
 * `fleetd devices exec --key` runs, one signed with another key is refused by the agent, and one whose deadline
 * passed is never delivered and expires. Over MQTT, a command queued while the agent is connected reaches it at
 * once through a wake-up, and its heartbeats never touch HTTP. `fleetd devices tag` edits tags by id and by filter.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateKeyPair, signManifest } from '../src/artifacts/signing.js';
import { scriptSigningText } from '../src/core/command.js';
import { type Agent, type AgentOptions, startAgent } from './support/agents.js';
import { eventually } from './support/eventually.js';
import { type Operator, operator } from './support/fleet.js';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { recordingProxy } from './support/recording-proxy.js';

let server: ServerProcess;
let data: string;
let op: Operator;
let enrollToken: string;
let marks: string;
const agents: Agent[] = [];
const cli = (...args: string[]) => runCli(['--server', server.url, '--data', data, ...args]);

interface Target {
  device_id: string;
  state: string;
  exit_code: number | null;
  output: string | null;
  error: string | null;
  delivered_at: string | null;
  logs_bytes: number | null;
}
interface CommandView {
  id: string;
  expires_at: string;
  counts: Record<string, number>;
  devices: Target[];
}

beforeAll(async () => {
  data = tempDir();
  marks = tempDir('fleetd-marks-');
  server = await spawnServer(data, ['--heartbeat-interval', '1h', '--log-level', 'warn']);
  op = operator(server.url, data);
  // Imported first, so commands can be queued for them before their agents ever ran; the token claims them.
  await op.call('POST', '/api/v1/devices/import', {
    devices: [
      { id: 'cmd-http', tags: { lab: 'commands' } },
      { id: 'cmd-mqtt', tags: { lab: 'commands' } },
    ],
  });
  enrollToken = (
    await op.call<{ token: string }>('POST', '/api/v1/enrollment-tokens', { claim: 'tag.lab = commands' })
  ).body.token;
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill('SIGKILL')));
  await server?.kill();
});

/** An agent whose reboot hook leaves a mark, enrolled with the token that claims the lab's devices. */
async function device(id: string, options: AgentOptions): Promise<Agent> {
  const agent = await startAgent(op, id, {
    enrollToken,
    firmware: '1.0.0',
    ...options,
    flags: [
      ...['--reboot-command', `echo "reboot asked" > ${join(marks, `${id}-rebooted`)}; echo rebooting`],
      ...['--collect-logs-command', 'printf "log line 1\\nlog since %s s\\n" "$FLEETD_SINCE_SEC"'],
      ...(options.flags ?? []),
    ],
  });
  agents.push(agent);
  return agent;
}

async function send(body: Record<string, unknown>): Promise<string> {
  const r = await op.call<{ command: { id: string } | null }>('POST', '/api/v1/commands', body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.command!.id;
}

const view = async (id: string) => (await op.call<CommandView>('GET', `/api/v1/commands/${id}`)).body;

async function finished(id: string, agent: Agent): Promise<Target> {
  return eventually(
    `command ${id} to finish`,
    async () => {
      const t = (await view(id)).devices[0]!;
      if (t.state !== 'succeeded' && t.state !== 'failed')
        throw new Error(`${t.state}; agent: ${agent.output()}`);
      return t;
    },
    { timeoutMs: 20_000 },
  );
}

it('over HTTP: commands queued before the first heartbeat run, logs download, a bad signature and a passed deadline never run', async () => {
  const expiring = await send({
    ids: ['cmd-http'],
    command: { kind: 'run', script: `touch ${join(marks, 'expired-ran')}`, signature: 'A'.repeat(86) + '==' },
    deadline: '1s',
  });
  const expiresAt = Date.parse((await view(expiring)).expires_at);
  // The deadline itself is what is waited for: the server's clock is the real one here.
  await eventually('the deadline to pass', () => Date.now() > expiresAt + 100, { timeoutMs: 5_000 });

  const reboot = await send({ ids: ['cmd-http'], command: { kind: 'reboot' } });
  const logs = await send({ filter: 'id = cmd-http', command: { kind: 'collect-logs', since: 7200 } });
  const otherKey = generateKeyPair().privateKeyPem;
  const forged = await send({
    ids: ['cmd-http'],
    command: {
      kind: 'run',
      script: `touch ${join(marks, 'forged-ran')}`,
      signature: signManifest(scriptSigningText(`touch ${join(marks, 'forged-ran')}`), otherKey),
    },
  });
  const scriptFile = join(marks, 'script.sh');
  writeFileSync(
    scriptFile,
    `echo signed script ran > ${join(marks, 'signed-ran')}\necho hello from the script\n`,
  );
  const exec = cli(
    'devices',
    'exec',
    'cmd-http',
    '--key',
    join(data, 'signing.key'),
    '--',
    'run',
    scriptFile,
  );
  expect(exec.code, exec.stderr).toBe(0);
  const signed = /^(cmd_\S+):/.exec(exec.stdout)?.[1];
  expect(signed, exec.stdout).toBeDefined();

  // Not waited for online: the commands are in its first heartbeat's answer.
  const agent = await device('cmd-http', { online: false });

  const rebooted = await finished(reboot, agent);
  expect(rebooted).toMatchObject({ state: 'succeeded', exit_code: 0, output: 'rebooting\n' });
  expect(readFileSync(join(marks, 'cmd-http-rebooted'), 'utf8')).toBe('reboot asked\n');

  expect(await finished(logs, agent)).toMatchObject({ state: 'succeeded', exit_code: 0, logs_bytes: 28 });
  const out = join(marks, 'downloaded.log');
  const download = cli('commands', 'logs', logs, 'cmd-http', '--out', out);
  expect(download.code, download.stderr).toBe(0);
  expect(readFileSync(out, 'utf8')).toBe('log line 1\nlog since 7200 s\n');

  const refused = await finished(forged, agent);
  expect(refused.state).toBe('failed');
  expect(refused.error).toMatch(/signature/);
  expect(existsSync(join(marks, 'forged-ran'))).toBe(false);

  expect(await finished(signed!, agent)).toMatchObject({
    state: 'succeeded',
    exit_code: 0,
    output: 'hello from the script\n',
  });
  expect(readFileSync(join(marks, 'signed-ran'), 'utf8')).toBe('signed script ran\n');

  const show = cli('commands', 'show', signed!);
  expect(show.code, show.stderr).toBe(0);
  expect(show.stdout).toContain('succeeded');

  // Never handed over; the status sweep (every 15 s) closes it with an event.
  const late = await eventually(
    'the expired command to be closed',
    async () => {
      const t = (await view(expiring)).devices[0]!;
      return t.state === 'expired' && t;
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
  expect(late.delivered_at).toBeNull();
  expect(existsSync(join(marks, 'expired-ran'))).toBe(false);
  const history = await op.call<{ commands: Array<{ id: string; result: { state: string } }> }>(
    'GET',
    '/api/v1/devices/cmd-http/commands',
  );
  expect(history.body.commands.map((c) => [c.id, c.result.state])).toEqual([
    [signed, 'succeeded'],
    [forged, 'failed'],
    [logs, 'succeeded'],
    [reboot, 'succeeded'],
    [expiring, 'expired'],
  ]);
}, 90_000);

it('over MQTT: a command queued while the agent is connected reaches it at once, without an HTTP heartbeat', async () => {
  expect(server.mqttUrl).toMatch(/^mqtt:\/\//);
  const proxy = await recordingProxy(server.url);
  try {
    const agent = await device('cmd-mqtt', { serverUrl: proxy.url, flags: ['--mqtt', server.mqttUrl!] });
    // Its next heartbeat is an hour away: only the wake-up over MQTT brings the command now. (Its very first
    // heartbeat may have gone over HTTP, before the broker connection was up.)
    const before = proxy.seen.filter((s) => s.includes('/heartbeat')).length;
    const id = await send({ ids: ['cmd-mqtt'], command: { kind: 'reboot' } });
    expect(await finished(id, agent)).toMatchObject({ state: 'succeeded', exit_code: 0 });
    expect(existsSync(join(marks, 'cmd-mqtt-rebooted'))).toBe(true);
    expect(proxy.seen.filter((s) => s.includes('/heartbeat'))).toHaveLength(before);
    expect(proxy.seen).toContain(`POST /api/device/v1/commands/${id}/result`);
  } finally {
    proxy.close();
  }
}, 60_000);

it('fleetd devices tag sets and removes tags by id and by filter, and exits non-zero for a device it could not edit', async () => {
  const one = cli('devices', 'tag', 'cmd-http', 'site=lab-1', 'shelf=3');
  expect(one.code, one.stderr).toBe(0);
  expect(one.stdout).toContain('cmd-http: lab=commands site=lab-1 shelf=3');
  const many = cli('devices', 'tag', '--filter', 'tag.lab = commands', 'wave=2', 'shelf-');
  expect(many.code, many.stderr).toBe(0);
  expect(many.stdout).toContain('2 devices changed');
  const device = await op.call<{ tags: Record<string, string> }>('GET', '/api/v1/devices/cmd-mqtt');
  expect(device.body.tags).toEqual({ lab: 'commands', wave: '2' });
  const missing = cli('devices', 'tag', 'no-such-device', 'wave=3');
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('does not exist');
  const bad = cli('devices', 'tag', 'cmd-http', 'wave');
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain('key=value');
});
