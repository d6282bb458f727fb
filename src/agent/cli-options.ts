/**
 * `fleetd agent --server URL --enroll-token T --device-id ID --hardware TYPE --state-dir DIR
 *  --public-key FILE [--health-cmd CMD | --health-url URL | --health-tcp HOST:PORT] [--firmware VERSION]
 *  [--mqtt URL]`
 * as commander hands the flags over (camelCase), mapped onto AgentOptions.
 */
import { readFile } from 'node:fs/promises';
import type { AgentOptions } from './agent.js';
import { healthCheckFromFlags } from './health.js';
import { runShell } from './run-command.js';
import { loadPublicKey } from './verify.js';

export interface AgentCliFlags {
  server: string;
  enrollToken?: string | undefined;
  deviceId: string;
  hardware: string;
  stateDir: string;
  /** A file holding the release-signing public key (PEM or raw base64). */
  publicKey: string;
  healthCmd?: string | undefined;
  healthUrl?: string | undefined;
  healthTcp?: string | undefined;
  firmware?: string | undefined;
  /** Soft updates: a shell command asked before installing; exit 0 lets the install go ahead. */
  consentCmd?: string | undefined;
  /** mqtt://host:port: heartbeat and report over MQTT, HTTP as the fallback. */
  mqtt?: string | undefined;
}

/** A consent hook as a shell command: exit 0 means "install now"; anything else (or 60 s) means "not yet". */
function consentCommand(command: string): () => Promise<boolean> {
  return async () => {
    const result = await runShell(['-c', command], { timeoutMs: 60_000 });
    return result.kind === 'exit' && result.code === 0;
  };
}

/** Reads the key file and checks every flag now, so a mistake stops the agent at start, not mid-update. */
export async function agentOptionsFromFlags(flags: AgentCliFlags): Promise<AgentOptions> {
  const publicKey = loadPublicKey(await readFile(flags.publicKey, 'utf8'));
  const health = healthCheckFromFlags(flags);
  new URL(flags.server); // throws on a malformed server URL
  if (flags.mqtt !== undefined && !/^(mqtts?|wss?|tcp|tls):\/\/[^/]/.test(flags.mqtt)) {
    throw new Error(`--mqtt: "${flags.mqtt}" is not a broker URL such as mqtt://fleet.example.com:1883`);
  }
  return {
    server: flags.server,
    deviceId: flags.deviceId,
    hardwareType: flags.hardware,
    stateDir: flags.stateDir,
    publicKey,
    ...(flags.enrollToken !== undefined ? { enrollToken: flags.enrollToken } : {}),
    ...(health !== undefined ? { health } : {}),
    ...(flags.firmware !== undefined ? { firmwareVersion: flags.firmware } : {}),
    ...(flags.consentCmd !== undefined ? { consent: consentCommand(flags.consentCmd) } : {}),
    ...(flags.mqtt !== undefined ? { mqtt: flags.mqtt } : {}),
  };
}
