/**
 * Remote commands on the device (docs/remote-commands.md): the agent runs what its heartbeat answer hands it and
 * posts each result. Every kind runs a configurable shell command (a real reboot is the operator's choice, never
 * a test's); `run` runs a script only when its signature by the pinned release-signing key holds.
 */
import type { KeyObject } from 'node:crypto';
import { MAX_COMMAND_LOGS_BYTES, MAX_COMMAND_OUTPUT, scriptSigningText } from '../core/command.js';
import type { CommandResultJson, DeviceCommandJson } from '../protocol/commands.js';
import type { Logger } from './log.js';
import { describeFailure, runShell } from './run-command.js';
import { signatureValid } from './verify.js';

/** The shell commands each kind runs. `restart-app` gets $FLEETD_APP, `collect-logs` $FLEETD_SINCE_SEC. */
export interface CommandHooks {
  reboot: string;
  restartApp: string;
  collectLogs: string;
}

export const DEFAULT_COMMAND_HOOKS: CommandHooks = {
  reboot: 'systemctl reboot',
  restartApp: 'systemctl restart "$FLEETD_APP"',
  collectLogs: 'journalctl --no-pager --since "-$FLEETD_SINCE_SEC"s',
};

const DEFAULT_SINCE_SEC = 3_600;
/** How many handled command ids are remembered, so that one handed over twice runs once. */
const REMEMBERED = 1_000;

export interface RemoteCommandsOptions {
  hooks: CommandHooks;
  publicKey: KeyObject;
  timeoutMs: number;
  log: Logger;
  post(id: string, result: CommandResultJson): Promise<void>;
}

export class RemoteCommands {
  private readonly handled = new Set<string>();
  /** Results the server has not taken yet (it was unreachable): posted again at the next step. */
  private readonly unsent = new Map<string, CommandResultJson>();

  constructor(private readonly o: RemoteCommandsOptions) {}

  async run(commands: readonly DeviceCommandJson[]): Promise<void> {
    for (const command of commands) {
      if (this.handled.has(command.id)) continue;
      this.remember(command.id);
      const result = await this.execute(command);
      this.o.log.info('remote command done', {
        id: command.id,
        kind: command.kind,
        exit_code: result.exit_code,
        ...(result.error ? { error: result.error } : {}),
      });
      this.unsent.set(command.id, result);
    }
    await this.flush();
  }

  async flush(): Promise<void> {
    for (const [id, result] of this.unsent) {
      try {
        await this.o.post(id, result);
        this.unsent.delete(id);
      } catch (error) {
        this.o.log.warn('remote command result not sent', { id, error: (error as Error).message });
        return;
      }
    }
  }

  private remember(id: string): void {
    this.handled.add(id);
    if (this.handled.size > REMEMBERED) this.handled.delete(this.handled.values().next().value!);
  }

  private async execute(c: DeviceCommandJson): Promise<CommandResultJson> {
    const refuse = (error: string): CommandResultJson => ({
      exit_code: null,
      output: '',
      output_truncated: false,
      error,
    });
    switch (c.kind) {
      case 'reboot':
        return this.shell(this.o.hooks.reboot, {});
      case 'restart-app':
        if (!c.app) return refuse('restart-app without an application');
        return this.shell(this.o.hooks.restartApp, { FLEETD_APP: c.app });
      case 'collect-logs':
        return this.collectLogs(c.since ?? DEFAULT_SINCE_SEC);
      case 'run':
        // The device is the one that decides: the server passes on whatever it was sent.
        if (
          !c.script ||
          !c.signature ||
          !signatureValid(scriptSigningText(c.script), c.signature, this.o.publicKey)
        ) {
          return refuse('script refused: its signature does not verify with the release-signing key');
        }
        return this.shell(c.script, {});
      default:
        return refuse(`unknown command kind ${String((c as { kind: unknown }).kind)}`);
    }
  }

  private async shell(command: string, env: Record<string, string>): Promise<CommandResultJson> {
    const result = await runShell(['-c', command], {
      timeoutMs: this.o.timeoutMs,
      keepOutput: MAX_COMMAND_OUTPUT + 1,
      env,
    });
    const output = 'output' in result ? result.output : '';
    return {
      exit_code: result.kind === 'exit' ? result.code : null,
      output: output.slice(-MAX_COMMAND_OUTPUT),
      output_truncated: output.length > MAX_COMMAND_OUTPUT,
      error: result.kind === 'exit' ? null : (describeFailure(result, this.o.timeoutMs) ?? null),
    };
  }

  private async collectLogs(sinceSec: number): Promise<CommandResultJson> {
    const result = await runShell(['-c', this.o.hooks.collectLogs], {
      timeoutMs: this.o.timeoutMs,
      keepOutput: MAX_COMMAND_LOGS_BYTES + 1,
      env: { FLEETD_SINCE_SEC: String(sinceSec) },
    });
    if (result.kind !== 'exit') {
      return {
        exit_code: null,
        output: 'output' in result ? result.output.slice(-MAX_COMMAND_OUTPUT) : '',
        output_truncated: false,
        error: describeFailure(result, this.o.timeoutMs) ?? 'failed',
      };
    }
    const all = Buffer.from(result.output, 'utf8');
    const logs = all.subarray(Math.max(0, all.length - MAX_COMMAND_LOGS_BYTES));
    return {
      exit_code: result.code,
      output: `collected ${logs.length} bytes${logs.length < all.length ? ' (the newest part)' : ''}`,
      output_truncated: logs.length < all.length,
      error: null,
      logs: logs.toString('base64'),
    };
  }
}
