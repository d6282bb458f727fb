/**
 * The provisioning bundle (`fleetd devices provision ID --out FILE.tar.gz`, docs/provisioning.md): a
 * gzipped tar of a few flat files, everything `fleetd agent --bundle FILE` needs to start with no other flag.
 *
 *   agent.json            server URL, device id, hardware type, state folder, key algorithm, MQTT URL
 *   ca.pem                the FleetD CA the server's certificate chains to
 *   signing.pub           the release-signing public key the agent pins
 *   enroll-token    0600  a one-use enrollment token for this device id
 *   fleetd-agent.service  a systemd unit that runs the agent from the bundle
 *   tuf-root.json         the TUF root the agent trusts (when the fleet has TUF): its only trust anchor for
 *                         release metadata; newer roots reach it through the signed chain
 *   director-root.json    the director's root (when the fleet has a director): releases must then also be what
 *                         the director signed for this device
 *
 * The format is defined here, on the device side; the CLI writes it with these names.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { KEY_ALGORITHMS, type KeyAlgorithm } from './identity.js';

export const BUNDLE_FILES = {
  config: 'agent.json',
  ca: 'ca.pem',
  publicKey: 'signing.pub',
  enrollToken: 'enroll-token',
  unit: 'fleetd-agent.service',
  tufRoot: 'tuf-root.json',
  directorRoot: 'director-root.json',
} as const;

/** agent.json: the agent's flags, as the bundle carries them. */
export interface BundleConfig {
  server: string;
  device_id: string;
  hardware_type: string;
  state_dir: string;
  key_algorithm?: KeyAlgorithm;
  mqtt?: string;
}

/** Where a provisioned agent keeps its state unless told otherwise (systemd's StateDirectory=fleetd-agent). */
export const DEFAULT_BUNDLE_STATE_DIR = '/var/lib/fleetd-agent';

export interface Bundle {
  config: BundleConfig;
  caPem: string;
  publicKeyPem: string;
  enrollToken: string | undefined;
  tufRootJson?: string | undefined;
  directorRootJson?: string | undefined;
}

/**
 * Reads a bundle: unpacks it into a private temporary folder (only the known file names, regular files
 * only), reads and checks the files, and removes the folder again so the token is not left lying around.
 */
export async function readBundle(file: string): Promise<Bundle> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetd-bundle-'));
  try {
    const known = new Set<string>(Object.values(BUNDLE_FILES));
    try {
      await tar.x({
        file,
        cwd: dir,
        strict: true,
        filter: (path, entry) =>
          known.has(path.replace(/^\.\//, '')) && 'type' in entry && entry.type === 'File',
      });
    } catch (e) {
      throw new Error(`${file} is not a provisioning bundle (a .tar.gz): ${(e as Error).message}`);
    }
    const read = (name: string) => readFile(join(dir, name), 'utf8').catch(() => undefined);
    const configText = await read(BUNDLE_FILES.config);
    if (configText === undefined)
      throw new Error(`${file} holds no ${BUNDLE_FILES.config}: not a provisioning bundle`);
    const config = parseBundleConfig(configText, file);
    const caPem = await read(BUNDLE_FILES.ca);
    const publicKeyPem = await read(BUNDLE_FILES.publicKey);
    if (caPem === undefined || publicKeyPem === undefined) {
      throw new Error(`${file} lacks ${BUNDLE_FILES.ca} or ${BUNDLE_FILES.publicKey}`);
    }
    const token = (await read(BUNDLE_FILES.enrollToken))?.trim();
    const tufRootJson = await read(BUNDLE_FILES.tufRoot);
    const directorRootJson = await read(BUNDLE_FILES.directorRoot);
    return {
      config,
      caPem,
      publicKeyPem,
      enrollToken: token || undefined,
      ...(tufRootJson !== undefined ? { tufRootJson } : {}),
      ...(directorRootJson !== undefined ? { directorRootJson } : {}),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parseBundleConfig(text: string, file: string): BundleConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: ${BUNDLE_FILES.config} is not JSON: ${(e as Error).message}`);
  }
  const c = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const text_ = (key: string): string => {
    const value = c[key];
    if (typeof value !== 'string' || value === '')
      throw new Error(`${file}: ${BUNDLE_FILES.config} lacks "${key}"`);
    return value;
  };
  const keyAlgorithm = c.key_algorithm;
  if (keyAlgorithm !== undefined && !KEY_ALGORITHMS.includes(keyAlgorithm as KeyAlgorithm)) {
    throw new Error(
      `${file}: key_algorithm "${String(keyAlgorithm)}" is not one of ${KEY_ALGORITHMS.join(', ')}`,
    );
  }
  return {
    server: text_('server'),
    device_id: text_('device_id'),
    hardware_type: text_('hardware_type'),
    state_dir: typeof c.state_dir === 'string' && c.state_dir !== '' ? c.state_dir : DEFAULT_BUNDLE_STATE_DIR,
    ...(keyAlgorithm !== undefined ? { key_algorithm: keyAlgorithm as KeyAlgorithm } : {}),
    ...(typeof c.mqtt === 'string' ? { mqtt: c.mqtt } : {}),
  };
}

/** The systemd unit a bundle carries: the agent restarted on failure, its state in StateDirectory. */
export function systemdUnit(bundlePath: string, fleetdPath = '/usr/local/bin/fleetd'): string {
  return [
    '[Unit]',
    'Description=FleetD device agent',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    `ExecStart=${fleetdPath} agent --bundle ${bundlePath}`,
    'Restart=always',
    'RestartSec=10',
    'StateDirectory=fleetd-agent',
    'StateDirectoryMode=0700',
    'UMask=0077',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
