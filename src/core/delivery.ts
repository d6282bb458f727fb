/**
 * Agentless delivery (docs/agentless.md): how the server itself brings an update to a device that runs no
 * agent — over SSH/SFTP to a pinned host key, or by POSTing the artifact to the device's own HTTP endpoint.
 * This module checks an operator's settings before anything is stored; the delivery worker does the I/O.
 */
import { FleetError } from './errors.js';

export interface SshDelivery {
  method: 'ssh';
  host: string;
  port: number;
  user: string;
  /** The device's pinned host key: `ssh-ed25519 AAAA…` (as in known_hosts) or its `SHA256:…` fingerprint. */
  hostKey: string;
  /** Run after the upload with the artifact's path in `$FLEETD_ARTIFACT`; exit 0 means installed. */
  installCommand: string;
  /** Run after the install; exit 0 means healthy. None: the install's success is the verdict. */
  healthCommand: string | null;
  /** The folder the artifact is uploaded to (default /tmp). */
  uploadDir: string;
}

export interface HttpPushDelivery {
  method: 'http_push';
  /** Where the artifact is POSTed; a 2xx answer means installed. */
  url: string;
}

export type Delivery = SshDelivery | HttpPushDelivery;

export const DELIVERY_METHODS = ['ssh', 'http_push'] as const;

/** The key types an SSH server may pin (what OpenSSH makes and ssh2 speaks). */
const HOST_KEY_LINE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) ([A-Za-z0-9+/]+={0,2})(\s.*)?$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const HOST = /^[A-Za-z0-9.:_-]{1,253}$/;
const USER = /^[a-z_][a-z0-9_.-]{0,31}$/i;
const MAX_COMMAND = 4096;

/** The pinned key as its type and base64 blob, or the fingerprint: what the host verifier compares. */
export type PinnedHostKey =
  | { kind: 'key'; type: string; blob: string }
  | { kind: 'fingerprint'; sha256: string };

export function parsePinnedHostKey(text: string, field = 'host_key'): PinnedHostKey {
  const trimmed = text.trim();
  const line = HOST_KEY_LINE.exec(trimmed);
  if (line) return { kind: 'key', type: line[1]!, blob: line[2]! };
  if (FINGERPRINT.test(trimmed)) return { kind: 'fingerprint', sha256: trimmed.slice('SHA256:'.length) };
  throw new FleetError(
    'VALIDATION',
    `${field}: pin the device's host key as "ssh-ed25519 AAAA…" (a line of ssh-keyscan) or its "SHA256:…" fingerprint`,
  );
}

function text(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new FleetError(
      'VALIDATION',
      `${field}: a non-empty string of at most ${max} characters is required`,
    );
  }
  return value;
}

/** The operator's settings (snake_case, as the API and the import file write them), checked whole. */
export function checkDelivery(input: Record<string, unknown>, at = 'delivery'): Delivery {
  const method = input.method;
  if (method === 'http_push') {
    const url = text(input.url, `${at}.url`, 2048);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new FleetError('VALIDATION', `${at}.url: "${url}" is not a URL`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new FleetError('VALIDATION', `${at}.url: only http and https URLs can take a push`);
    }
    if (parsed.username !== '' || parsed.password !== '') {
      // A secret in a URL ends up in listings and logs.
      throw new FleetError('VALIDATION', `${at}.url: put no credentials in the URL`);
    }
    return { method, url: parsed.toString() };
  }
  if (method !== 'ssh') {
    throw new FleetError('VALIDATION', `${at}.method: one of ${DELIVERY_METHODS.join(', ')}`);
  }
  const host = text(input.host, `${at}.host`, 253);
  if (!HOST.test(host))
    throw new FleetError('VALIDATION', `${at}.host: "${host}" is not a host name or address`);
  const port = input.port ?? 22;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new FleetError('VALIDATION', `${at}.port: an integer from 1 to 65535`);
  }
  const user = text(input.user, `${at}.user`, 32);
  if (!USER.test(user)) throw new FleetError('VALIDATION', `${at}.user: "${user}" is not a user name`);
  const hostKey = text(input.host_key, `${at}.host_key`, 8192).trim();
  parsePinnedHostKey(hostKey, `${at}.host_key`);
  const installCommand = text(input.install_command, `${at}.install_command`, MAX_COMMAND);
  const healthCommand =
    input.health_command === undefined || input.health_command === null
      ? null
      : text(input.health_command, `${at}.health_command`, MAX_COMMAND);
  const uploadDir =
    input.upload_dir === undefined ? '/tmp' : text(input.upload_dir, `${at}.upload_dir`, 1024);
  if (!uploadDir.startsWith('/')) throw new FleetError('VALIDATION', `${at}.upload_dir: an absolute path`);
  return { method, host, port, user, hostKey, installCommand, healthCommand, uploadDir };
}

/** The settings as the API shows them (snake_case; nothing secret is ever in them). */
export function deliveryJson(d: Delivery) {
  if (d.method === 'http_push') return { method: d.method, url: d.url };
  return {
    method: d.method,
    host: d.host,
    port: d.port,
    user: d.user,
    host_key: d.hostKey,
    install_command: d.installCommand,
    health_command: d.healthCommand,
    upload_dir: d.uploadDir,
  };
}
