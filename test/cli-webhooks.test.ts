/** `fleetd webhooks …`: the real binary against a real server process, delivering to a real receiver. */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signatureMatches } from '../src/events/webhook-rules.js';
import { FLEETD, freePort, type ServerProcess, spawnServer, tempDir } from './support/processes.js';
import { type Receiver, startReceiver } from './support/receiver.js';

let server: ServerProcess;
let data: string;
let receiver: Receiver;

/** Runs the CLI without blocking this process, which also runs the receiver the server delivers to. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [FLEETD, '--server', server.url, '--data', data, ...args], {
    env: { ...process.env, FLEETD_SERVER: '', FLEETD_TOKEN: '' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

beforeAll(async () => {
  data = tempDir();
  receiver = await startReceiver();
  server = await spawnServer(data, [
    '--webhook-interval',
    '100ms',
    '--webhook-timeout',
    '2s',
    '--webhook-allow-private',
  ]);
});
afterAll(async () => {
  await server.kill();
  await receiver.close();
});

describe('fleetd webhooks', () => {
  let id: string;
  const secret = 'cli-test-secret-0123456789';

  it('adds a webhook and prints its secret once', async () => {
    const r = await cli('webhooks', 'add', receiver.url, '--type', 'webhook.', 'device.', '--secret', secret);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      /^webhook wh_[\w-]+ → http:\/\/127\.0\.0\.1:\d+\/hook \(events: webhook\.,device\.\)\n/,
    );
    expect(r.stdout).toContain(`secret (shown once): ${secret}`);
    id = /webhook (wh_[\w-]+)/.exec(r.stdout)![1]!;
    const ls = await cli('webhooks', 'ls');
    expect(ls.stdout).toMatch(
      new RegExp(`^ID\\s+URL\\s+EVENTS.*\\n${id}\\s+${receiver.url}\\s+webhook\\.,device\\.`),
    );
    expect(ls.stdout).not.toContain(secret);
    const json = JSON.parse((await cli('webhooks', 'ls', '-o', 'json')).stdout);
    expect(json.webhooks).toMatchObject([{ id, url: receiver.url, types: ['webhook.', 'device.'] }]);
  });

  it('sends a test event and waits until the running server has delivered it', async () => {
    const r = await cli('webhooks', 'test', id);
    expect(r.stderr).toBe('');
    const eventId = Number(/^delivered test event (\d+)$/m.exec(r.stdout)![1]);
    const request = receiver.requests.find((q) => q.eventIds.includes(eventId))!;
    expect(request.types).toEqual(['webhook.test']);
    expect(signatureMatches(secret, request.body, String(request.headers['x-fleetd-signature']))).toBe(true);
    const show = await cli('webhooks', 'show', id);
    expect(show.stdout).toMatch(new RegExp(`cursor\\s+${eventId}\\n`));
    expect(show.stdout).toMatch(/lag\s+0 events\n/);
    expect(show.stdout).toMatch(/failures\s+0\n/);
  });

  it('reports a failing webhook on one line and exits 1', async () => {
    const port = await freePort();
    const add = await cli('webhooks', 'add', `http://127.0.0.1:${port}/down`, '-o', 'json');
    const down = JSON.parse(add.stdout).id as string;
    const r = await cli('webhooks', 'test', down);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fleetd: test event \d+ not delivered: ECONNREFUSED \(next attempt .+\)\n$/);
    expect((await cli('webhooks', 'show', down)).stdout).toMatch(/last error\s+ECONNREFUSED/);
    expect((await cli('webhooks', 'rm', down)).stdout).toBe(`deleted ${down}\n`);
  });

  it('bad input: one clear line on stderr and exit 1', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['webhooks', 'add', 'ftp://example.com/x'],
        /^fleetd: url: "ftp:\/\/example\.com\/x" must be an http:\/\/ or https:\/\/ URL \(VALIDATION\)\n$/,
      ],
      [['webhooks', 'show', 'wh_nope'], /^fleetd: webhook wh_nope does not exist \(NOT_FOUND\)\n$/],
      [['webhooks', 'test', 'wh_nope'], /^fleetd: webhook wh_nope does not exist \(NOT_FOUND\)\n$/],
      [['webhooks', 'test', id, '--wait', 'soon'], /^fleetd: --wait: "soon" is not a duration.*\n$/],
    ];
    for (const [args, expected] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(expected);
    }
  });

  it('removes a webhook', async () => {
    expect((await cli('webhooks', 'rm', id)).stdout).toBe(`deleted ${id}\n`);
    const gone = await cli('webhooks', 'rm', id);
    expect([gone.code, gone.stderr]).toEqual([1, `fleetd: webhook ${id} does not exist (NOT_FOUND)\n`]);
  });
});
