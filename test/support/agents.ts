/**
 * A real `fleetd agent` process for a real server process, started as a device is provisioned: the server's
 * pinned release key, an enrollment token, a state folder of its own; then, unless told not to, the test waits
 * until the server lists the device online.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type EventuallyOptions, eventually } from './eventually.js';
import { type Operator, pinnedKeyFile } from './fleet.js';
import { type AgentProcess, spawnAgent, tempDir } from './processes.js';

export interface AgentOptions {
  /** Where the agent sends its requests (a proxy in front of the server, say); the operator's server by default. */
  serverUrl?: string;
  /** `--hardware`; pos-x200 by default. */
  hardware?: string;
  /** `--firmware`, the version it runs before any release; not given by default. */
  firmware?: string;
  /** Its state folder; a new one by default. An agent started again is given the folder it had. */
  stateDir?: string;
  /** The pinned release key; the server's by default. */
  publicKeyFile?: string;
  /** The enrollment token; a new one without a claim by default. */
  enrollToken?: string;
  /** Further flags (`--tuf-root FILE`, `--mqtt URL`, hooks...), after the ones above. */
  flags?: string[];
  /** Waits until the server lists the device online (by default, within 30 s), or not at all (`false`). */
  online?: boolean | EventuallyOptions;
}

export interface Agent extends AgentProcess {
  id: string;
  stateDir: string;
}

export async function startAgent(op: Operator, id: string, options: AgentOptions = {}): Promise<Agent> {
  const stateDir = options.stateDir ?? tempDir('fleetd-agent-');
  const enrollToken =
    options.enrollToken ??
    (await op.call<{ token: string }>('POST', '/api/v1/enrollment-tokens', {})).body.token;
  const agent = spawnAgent([
    ...[
      '--server',
      options.serverUrl ?? op.url,
      '--device-id',
      id,
      '--hardware',
      options.hardware ?? 'pos-x200',
    ],
    ...['--state-dir', stateDir, '--public-key', options.publicKeyFile ?? (await pinnedKeyFile(op))],
    ...['--enroll-token', enrollToken],
    ...(options.firmware === undefined ? [] : ['--firmware', options.firmware]),
    ...(options.flags ?? []),
  ]);
  const online = options.online ?? true;
  if (online !== false) {
    try {
      await eventually(
        `device ${id} to come online`,
        async () => {
          const { body } = await op.call<{ status?: string }>('GET', `/api/v1/devices/${id}`);
          if (body.status === 'online') return true;
          throw new Error(`still ${body.status}; agent:\n${agent.output().slice(-2000)}`);
        },
        { timeoutMs: 30_000, intervalMs: 200, ...(online === true ? {} : online) },
      );
    } catch (error) {
      // The caller never gets this agent to stop.
      await agent.kill('SIGKILL');
      throw error;
    }
  }
  return { ...agent, id, stateDir };
}

/** The version in an agent's active slot: undefined while it has installed no release. */
export function activeVersion(stateDir: string): string | undefined {
  const current = join(stateDir, 'current');
  if (!existsSync(current)) return undefined;
  const record = join(stateDir, readlinkSync(current), 'release.json');
  return existsSync(record) ? JSON.parse(readFileSync(record, 'utf8')).version : undefined;
}
