/**
 * `fleetd agent --server URL --enroll-token T --device-id ID --hardware TYPE --state-dir DIR
 *  --public-key FILE [--ca FILE] [--enroll-cert] [--key-type ecdsa-p256|ed25519]
 *  [--health-cmd CMD | --health-url URL | --health-tcp HOST:PORT] [--firmware VERSION] [--mqtt URL]`,
 * or `fleetd agent --bundle FILE.tar.gz` (the bundle gives the rest; flags given as well win),
 * as commander hands the flags over (camelCase), mapped onto AgentOptions.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentOptions } from './agent.js';
import { type Bundle, readBundle } from './bundle.js';
import { consentHook } from './consent-hook.js';
import { healthCheckFromFlags } from './health.js';
import { KEY_ALGORITHMS, type KeyAlgorithm } from './identity.js';
import { parseInstallerConfig } from './installers/config.js';
import { runShell } from './run-command.js';
import { loadPublicKey } from './verify.js';

export interface AgentCliFlags {
  server?: string | undefined;
  enrollToken?: string | undefined;
  deviceId?: string | undefined;
  hardware?: string | undefined;
  stateDir?: string | undefined;
  /** A file holding the release-signing public key (PEM or raw base64). */
  publicKey?: string | undefined;
  /** A TUF root.json: releases must then also be signed TUF targets (docs/signing.md). */
  tufRoot?: string | undefined;
  /** A mirror of the TUF metadata (a CDN's URL) to read instead of the server's. */
  tufMetadataUrl?: string | undefined;
  /** The director's root.json: releases must then also be what the director signed for this device. */
  directorRoot?: string | undefined;
  /** A provisioning bundle (.tar.gz) that gives everything else. */
  bundle?: string | undefined;
  /** A file holding the FleetD CA (PEM) to trust the server's certificate with. */
  ca?: string | undefined;
  /** Enroll with a CSR even when the default would not (see AgentOptions.enrollCertificate). */
  enrollCert?: boolean | undefined;
  requestApproval?: boolean | undefined;
  keyType?: string | undefined;
  healthCmd?: string | undefined;
  healthUrl?: string | undefined;
  healthTcp?: string | undefined;
  firmware?: string | undefined;
  /** Soft updates: a shell command asked before installing; exit 0 lets the install go ahead. */
  consentCmd?: string | undefined;
  /** Soft updates: a shell command asked before installing; exit 0 installs, exit 75 defers through the server. */
  consentHook?: string | undefined;
  /** mqtt://host:port: heartbeat and report over MQTT, HTTP as the fallback. */
  mqtt?: string | undefined;
  /** Remote commands: the shell commands reboot, restart-app and collect-logs run. */
  rebootCommand?: string | undefined;
  restartAppCommand?: string | undefined;
  collectLogsCommand?: string | undefined;
  /** A file in which the application's supervisor counts its crashes (the health gate reads them). */
  appCrashFile?: string | undefined;
  /** Telemetry reports (docs/telemetry.md): false (`--no-telemetry`) turns them off. */
  telemetry?: boolean | undefined;
  /** How often telemetry is reported, in ms (default 5 min). */
  telemetryIntervalMs?: number | undefined;
  /** Custom metrics: a file of `name value` lines, or a command printing them. */
  metricsFile?: string | undefined;
  metricsCmd?: string | undefined;
  /** A JSON file configuring the install handlers (docs/installers.md). */
  installers?: string | undefined;
  /** Supervised applications, each `NAME=COMMAND`. */
  app?: string[] | undefined;
  /** Remote configuration: the shell command that applies a document, given $FLEETD_CONFIG_FILE. */
  configHook?: string | undefined;
}

/** A consent hook as a shell command: exit 0 means "install now"; anything else (or 60 s) means "not yet". */
function consentCommand(command: string): () => Promise<boolean> {
  return async () => {
    const result = await runShell(['-c', command], { timeoutMs: 60_000 });
    return result.kind === 'exit' && result.code === 0;
  };
}

/** `--app NAME=COMMAND`: a supervised application. */
function appSpec(text: string): { name: string; command: string } {
  const match = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})=(.+)$/s.exec(text);
  if (!match) throw new Error(`--app: "${text}" is not NAME=COMMAND (a name of letters, digits, . _ -)`);
  return { name: match[1]!, command: match[2]! };
}

/** Reads the key file and checks every flag now, so a mistake stops the agent at start, not mid-update. */
export async function agentOptionsFromFlags(flags: AgentCliFlags): Promise<AgentOptions> {
  const bundle: Bundle | undefined = flags.bundle !== undefined ? await readBundle(flags.bundle) : undefined;
  const required = (value: string | undefined, flag: string): string => {
    if (value === undefined || value === '') throw new Error(`${flag} is required (or --bundle FILE)`);
    return value;
  };
  const server = required(flags.server ?? bundle?.config.server, '--server <url>');
  const publicKey = loadPublicKey(
    flags.publicKey !== undefined
      ? await readFile(flags.publicKey, 'utf8')
      : required(bundle?.publicKeyPem, '--public-key <file>'),
  );
  const ca = flags.ca !== undefined ? await readFile(flags.ca, 'utf8') : bundle?.caPem;
  const keyType = flags.keyType ?? bundle?.config.key_algorithm;
  if (keyType !== undefined && !KEY_ALGORITHMS.includes(keyType as KeyAlgorithm)) {
    throw new Error(`--key-type: "${keyType}" is not one of ${KEY_ALGORITHMS.join(', ')}`);
  }
  if (flags.consentCmd !== undefined && flags.consentHook !== undefined) {
    throw new Error('--consent-cmd and --consent-hook: give one of them (--consent-hook can also defer)');
  }
  const health = healthCheckFromFlags(flags);
  new URL(server); // throws on a malformed server URL
  const mqtt = flags.mqtt ?? bundle?.config.mqtt;
  if (mqtt !== undefined && !/^(mqtts?|wss?|tcp|tls):\/\/[^/]/.test(mqtt)) {
    throw new Error(`--mqtt: "${mqtt}" is not a broker URL such as mqtt://fleet.example.com:1883`);
  }
  const enrollToken = flags.enrollToken ?? bundle?.enrollToken;
  const tufRoot = flags.tufRoot !== undefined ? await readFile(flags.tufRoot, 'utf8') : bundle?.tufRootJson;
  const tufMetadataUrl = flags.tufMetadataUrl;
  if (tufMetadataUrl !== undefined) {
    if (!/^https?:\/\/[^/]/.test(tufMetadataUrl))
      throw new Error(`--tuf-metadata-url: "${tufMetadataUrl}" is not an http(s) URL`);
    if (tufRoot === undefined)
      throw new Error('--tuf-metadata-url needs a TUF root to trust (--tuf-root FILE, or a bundle with one)');
  }
  return {
    server,
    deviceId: required(flags.deviceId ?? bundle?.config.device_id, '--device-id <id>'),
    hardwareType: required(flags.hardware ?? bundle?.config.hardware_type, '--hardware <type>'),
    stateDir: required(flags.stateDir ?? bundle?.config.state_dir, '--state-dir <dir>'),
    publicKey,
    ...(enrollToken !== undefined ? { enrollToken } : {}),
    ...(ca !== undefined ? { ca } : {}),
    // A bundle is for certificate enrollment: its CA and https URL say so, this makes it explicit.
    ...(flags.enrollCert || bundle ? { enrollCertificate: true } : {}),
    // The approval queue proves the device by a request secret and hands it a bearer credential.
    ...(flags.requestApproval ? { requestApproval: true, enrollCertificate: flags.enrollCert === true } : {}),
    ...(keyType !== undefined ? { keyAlgorithm: keyType as KeyAlgorithm } : {}),
    ...(health !== undefined ? { health } : {}),
    ...(flags.firmware !== undefined ? { firmwareVersion: flags.firmware } : {}),
    ...(flags.consentCmd !== undefined ? { consent: consentCommand(flags.consentCmd) } : {}),
    ...(flags.consentHook !== undefined ? { consent: consentHook(flags.consentHook) } : {}),
    ...(mqtt !== undefined ? { mqtt } : {}),
    commandHooks: {
      ...(flags.rebootCommand !== undefined ? { reboot: flags.rebootCommand } : {}),
      ...(flags.restartAppCommand !== undefined ? { restartApp: flags.restartAppCommand } : {}),
      ...(flags.collectLogsCommand !== undefined ? { collectLogs: flags.collectLogsCommand } : {}),
    },
    ...(tufRoot !== undefined ? { tufRoot } : {}),
    ...(tufMetadataUrl !== undefined ? { tufMetadataUrl } : {}),
    ...(flags.directorRoot !== undefined
      ? { directorRoot: await readFile(flags.directorRoot, 'utf8') }
      : bundle?.directorRootJson !== undefined
        ? { directorRoot: bundle.directorRootJson }
        : {}),
    ...(flags.appCrashFile !== undefined ? { appCrashFile: flags.appCrashFile } : {}),
    ...(flags.telemetry === false
      ? {}
      : {
          telemetryReports: {
            stateFile: join(
              required(flags.stateDir ?? bundle?.config.state_dir, '--state-dir <dir>'),
              'boots.json',
            ),
            metricsFile: flags.metricsFile,
            metricsCommand: flags.metricsCmd,
            ...(flags.telemetryIntervalMs !== undefined ? { intervalMs: flags.telemetryIntervalMs } : {}),
          },
        }),
    ...(flags.app !== undefined && flags.app.length > 0 ? { apps: flags.app.map(appSpec) } : {}),
    ...(flags.configHook !== undefined ? { configHook: flags.configHook } : {}),
    ...(flags.installers !== undefined
      ? { installers: parseInstallerConfig(await readFile(flags.installers, 'utf8')) }
      : {}),
  };
}
