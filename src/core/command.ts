/**
 * Remote commands (docs/remote-commands.md): what an operator may ask a device to do, the states of one device's
 * run of a command, and their limits. Pure: the API checks a command with `checkCommand`, the store moves states,
 * the agent executes.
 */
import { FleetError } from './errors.js';

export const COMMAND_KINDS = ['reboot', 'restart-app', 'collect-logs', 'run'] as const;
export type CommandKind = (typeof COMMAND_KINDS)[number];

export interface CommandSpec {
  kind: CommandKind;
  /** restart-app: the application's name. */
  app?: string;
  /** collect-logs: how far back, in seconds. */
  sinceSec?: number;
  /** run: the shell script and its Ed25519 signature (base64) by the release-signing key. */
  script?: string;
  signature?: string;
}

/**
 * One device's run of a command: `queued` until its heartbeat takes it (`delivered`), then `succeeded` or
 * `failed` when the device posts its result; `expired` when the deadline passes first.
 */
export const COMMAND_STATES = ['queued', 'delivered', 'succeeded', 'failed', 'expired'] as const;
export type CommandState = (typeof COMMAND_STATES)[number];
export const OPEN_COMMAND_STATES: readonly CommandState[] = ['queued', 'delivered'];

export const DEFAULT_COMMAND_DEADLINE_MS = 10 * 60_000;
export const MAX_COMMAND_DEADLINE_MS = 7 * 86_400_000;
/** How many devices run one command at once unless the operator says otherwise. */
export const DEFAULT_COMMAND_CONCURRENCY = 50;
export const MAX_COMMAND_CONCURRENCY = 10_000;
/** What a device's result keeps of the command's output (its tail). */
export const MAX_COMMAND_OUTPUT = 64 * 1024;
/** The largest collected-logs file a device may upload. */
export const MAX_COMMAND_LOGS_BYTES = 1024 * 1024;
export const MAX_SCRIPT_BYTES = 64 * 1024;
export const MAX_LOGS_SINCE_SEC = 30 * 86_400;

const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$/;
const SIGNATURE_B64 = /^[A-Za-z0-9+/]{86}==$/;

/**
 * The bytes a script's signature covers: a fixed prefix, so that no other signed text (a release manifest) can be
 * passed off as a script, nor a script as a manifest.
 */
export const scriptSigningText = (script: string): string => `fleetd-script-v1\n${script}`;

/** Refuses a command no device could run: the fields its kind needs, and only those. */
export function checkCommand(spec: CommandSpec): CommandSpec {
  const bad = (m: string): never => {
    throw new FleetError('VALIDATION', m);
  };
  const extra = (['app', 'sinceSec', 'script', 'signature'] as const).filter((k) => spec[k] !== undefined);
  const allowed: Record<CommandKind, readonly string[]> = {
    reboot: [],
    'restart-app': ['app'],
    'collect-logs': ['sinceSec'],
    run: ['script', 'signature'],
  };
  if (!COMMAND_KINDS.includes(spec.kind))
    bad(`command: "${spec.kind}" is not one of ${COMMAND_KINDS.join(', ')}`);
  const unexpected = extra.filter((k) => !allowed[spec.kind].includes(k));
  if (unexpected.length > 0) bad(`command: ${spec.kind} takes no ${unexpected.join(', ')}`);
  if (spec.kind === 'restart-app' && (spec.app === undefined || !APP_NAME.test(spec.app))) {
    bad(
      'command: restart-app needs an application name (letters, digits, _ . @ : -; at most 128 characters)',
    );
  }
  if (spec.kind === 'collect-logs' && spec.sinceSec !== undefined) {
    if (!Number.isInteger(spec.sinceSec) || spec.sinceSec < 1 || spec.sinceSec > MAX_LOGS_SINCE_SEC) {
      bad(`command: collect-logs --since must be from 1s to ${MAX_LOGS_SINCE_SEC / 86_400}d`);
    }
  }
  if (spec.kind === 'run') {
    if (!spec.script) bad('command: run needs a script');
    if (Buffer.byteLength(spec.script!, 'utf8') > MAX_SCRIPT_BYTES) {
      bad(`command: the script is larger than ${MAX_SCRIPT_BYTES / 1024} KiB`);
    }
    if (spec.signature === undefined || !SIGNATURE_B64.test(spec.signature)) {
      bad(
        "command: run needs the script's Ed25519 signature by the release-signing key (base64); sign it with `fleetd devices exec … -- run FILE --key KEY`",
      );
    }
  }
  return spec;
}

/** A device's result counts as success only with exit code 0 and no error of the agent's own. */
export const resultState = (exitCode: number | null, error: string | null): CommandState =>
  exitCode === 0 && error === null ? 'succeeded' : 'failed';
