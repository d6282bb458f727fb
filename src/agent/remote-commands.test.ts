import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_COMMAND_OUTPUT, scriptSigningText } from '../core/command.js';
import type { CommandResultJson } from '../protocol/commands.js';
import { silentLogger } from './log.js';
import { RemoteCommands } from './remote-commands.js';

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519').privateKey;
const signed = (script: string, key = privateKey) =>
  sign(null, Buffer.from(scriptSigningText(script), 'utf8'), key).toString('base64');

function runner(hooks: Partial<{ reboot: string; restartApp: string; collectLogs: string }> = {}) {
  const posted: Array<[string, CommandResultJson]> = [];
  const commands = new RemoteCommands({
    hooks: {
      reboot: 'echo rebooting',
      restartApp: 'echo "restart $FLEETD_APP"',
      collectLogs: 'echo logs',
      ...hooks,
    },
    publicKey,
    timeoutMs: 10_000,
    log: silentLogger,
    post: async (id, result) => {
      posted.push([id, result]);
    },
  });
  return { commands, posted };
}

const EXPIRES = '2030-01-01T00:00:00.000Z';

describe('remote commands on the agent', () => {
  it('runs a script signed with the release key, and refuses one signed with another key or the manifest form', async () => {
    const { commands, posted } = runner();
    const script = 'echo ran; exit 3';
    await commands.run([
      { id: 'good', kind: 'run', script, signature: signed(script), expires_at: EXPIRES },
      { id: 'forged', kind: 'run', script, signature: signed(script, other), expires_at: EXPIRES },
      {
        id: 'no-prefix',
        kind: 'run',
        script,
        signature: sign(null, Buffer.from(script), privateKey).toString('base64'),
        expires_at: EXPIRES,
      },
    ]);
    expect(posted).toEqual([
      ['good', { exit_code: 3, output: 'ran\n', output_truncated: false, error: null }],
      [
        'forged',
        { exit_code: null, output: '', output_truncated: false, error: expect.stringMatching(/signature/) },
      ],
      [
        'no-prefix',
        { exit_code: null, output: '', output_truncated: false, error: expect.stringMatching(/signature/) },
      ],
    ]);
  });

  it('gives restart-app its application, keeps the tail of a long output, and runs a command handed over twice once', async () => {
    const { commands, posted } = runner({
      reboot: `head -c ${MAX_COMMAND_OUTPUT + 10} /dev/zero | tr '\\0' x; echo END`,
    });
    await commands.run([{ id: 'app', kind: 'restart-app', app: 'till', expires_at: EXPIRES }]);
    await commands.run([{ id: 'boot', kind: 'reboot', expires_at: EXPIRES }]);
    await commands.run([{ id: 'boot', kind: 'reboot', expires_at: EXPIRES }]);
    expect(posted.map(([id]) => id)).toEqual(['app', 'boot']);
    expect(posted[0]![1].output).toBe('restart till\n');
    const long = posted[1]![1];
    expect(long.output_truncated).toBe(true);
    expect(long.output).toHaveLength(MAX_COMMAND_OUTPUT);
    expect(long.output.endsWith('xEND\n')).toBe(true);
  });

  it('uploads what the collect-logs hook prints, given how far back', async () => {
    const { commands, posted } = runner({ collectLogs: 'echo "since $FLEETD_SINCE_SEC"' });
    await commands.run([{ id: 'logs', kind: 'collect-logs', since: 600, expires_at: EXPIRES }]);
    expect(Buffer.from(posted[0]![1].logs!, 'base64').toString()).toBe('since 600\n');
  });
});
