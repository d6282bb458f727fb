/**
 * Delivery over SSH (docs/agentless.md): connect with the server's key to a device whose host key is pinned in
 * the registry (any other key fails the connection: closed, not trusted on first use), upload the artifact over
 * SFTP, then run the device's install and health commands. ssh2 is the maintained pure-JS SSH client.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
// ssh2 is CommonJS: Node's ESM loader gives only its default export (named imports fail at run time).
import ssh2, { type Client, type ClientChannel, type PublicKeyAuthMethod, type SFTPWrapper } from 'ssh2';
import { parsePinnedHostKey, type SshDelivery } from '../../core/delivery.js';
import type { DeliveryJob, DeliveryPhase } from './delivery-job.js';
import type { DeliveryCredentials } from './delivery-key.js';

/** How much of a failed command's output an update's error keeps (its tail: where the reason usually is). */
const OUTPUT_TAIL = 400;

/** Whether the key the host presented is the pinned one (its blob, or its SHA-256 fingerprint). */
export function hostKeyMatches(pinned: string, presented: Buffer): boolean {
  const pin = parsePinnedHostKey(pinned);
  if (pin.kind === 'key') return presented.equals(Buffer.from(pin.blob, 'base64'));
  return createHash('sha256').update(presented).digest('base64').replace(/=+$/, '') === pin.sha256;
}

/** A word the remote POSIX shell reads back unchanged. */
const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

export async function pushOverSsh(
  target: SshDelivery,
  key: DeliveryCredentials,
  job: DeliveryJob,
  phase: (p: DeliveryPhase) => Promise<void>,
  timeoutMs: number,
): Promise<void> {
  const client = new ssh2.Client();
  const publicKey: PublicKeyAuthMethod = { type: 'publickey', username: target.user, key: key.privateKey };
  let hostKeyRefused = false;
  const ready = new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', (error) =>
      reject(
        hostKeyRefused
          ? new Error(`the host key of ${target.host}:${target.port} is not the one pinned for this device`)
          : new Error(`ssh ${target.user}@${target.host}:${target.port}: ${error.message}`),
      ),
    );
  });
  client.connect({
    host: target.host,
    port: target.port,
    username: target.user,
    // Public-key authentication only, with the key decrypted once in memory (DeliveryKey).
    authHandler: [publicKey],
    readyTimeout: Math.min(timeoutMs, 20_000),
    hostVerifier: (presented: Buffer) => {
      const ok = hostKeyMatches(target.hostKey, presented);
      hostKeyRefused = !ok;
      return ok;
    },
  });
  try {
    await ready;
    const file = `fleetd-${job.release.name}-${job.release.version}`.replace(/[^A-Za-z0-9._-]/g, '_');
    const remote = `${target.uploadDir.replace(/\/+$/, '')}/${file}`;
    await upload(client, await job.open(), remote, timeoutMs);
    await phase('uploaded');
    if (job.action === 'download_only') return;
    const env =
      `FLEETD_ARTIFACT=${shellQuote(remote)} FLEETD_RELEASE=${shellQuote(job.release.name)} ` +
      `FLEETD_VERSION=${shellQuote(job.release.version)} FLEETD_SHA256=${job.release.sha256}`;
    await phase('installing');
    await run(client, `${env} sh -c ${shellQuote(target.installCommand)}`, 'install', timeoutMs);
    if (target.healthCommand === null) return;
    await phase('verifying');
    await run(client, `${env} sh -c ${shellQuote(target.healthCommand)}`, 'health check', timeoutMs);
  } finally {
    client.end();
  }
}

function sftpOf(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) =>
    client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))),
  );
}

/** Written to a temporary name and renamed: the install command never sees half a file. */
async function upload(client: Client, bytes: Readable, remote: string, timeoutMs: number): Promise<void> {
  const sftp = await sftpOf(client);
  const partial = `${remote}.part`;
  try {
    await pipeline(bytes, sftp.createWriteStream(partial, { mode: 0o600 }), {
      signal: AbortSignal.timeout(timeoutMs),
    });
    await new Promise<void>((resolve) => sftp.unlink(remote, () => resolve()));
    await new Promise<void>((resolve, reject) =>
      sftp.rename(partial, remote, (error) => (error ? reject(error) : resolve())),
    );
  } catch (error) {
    throw new Error(`upload to ${remote} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    sftp.end();
  }
}

async function run(client: Client, command: string, what: string, timeoutMs: number): Promise<void> {
  const channel = await new Promise<ClientChannel>((resolve, reject) =>
    client.exec(command, (error, ch) => (error ? reject(error) : resolve(ch))),
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  channel.on('data', keep);
  channel.stderr.on('data', keep);
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      channel.close();
      reject(new Error(`the ${what} did not finish within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    channel.on('close', (exit: number | null) => {
      clearTimeout(timer);
      resolve(exit);
    });
  });
  if (code !== 0) {
    const tail = output.trim();
    throw new Error(`the ${what} exited with ${code ?? 'a signal'}${tail ? `: ${tail}` : ''}`);
  }
}
