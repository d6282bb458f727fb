/**
 * A real OpenSSH server (Debian's openssh-server) for a test: its own sshd_config, host key and authorized_keys
 * in a temporary folder, listening on a loopback port, public-key login only. As an ordinary user sshd runs
 * unprivileged and admits only that user; run as root, OpenSSH insists on its privilege-separation folder
 * (/run/sshd, which the service's unit normally makes), so it is made here when missing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, tempDir } from './processes.js';

export const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  port: number;
  /** The user the delivery logs in as (this process's). */
  user: string;
  /** The host key as ssh-keyscan prints it: what a registry pins. */
  hostKey: string;
  /** A folder the device's commands may write to (owned by the test). */
  dir: string;
  stop(): Promise<void>;
}

export async function startSshd(authorizedKey: string): Promise<Sshd> {
  const dir = tempDir('fleetd-sshd-');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  writeFileSync(join(dir, 'authorized_keys'), `${authorizedKey}\n`, { mode: 0o600 });
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The temporary folder's modes are the test's, not a home directory's.
      'StrictModes no',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('Server listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`sshd exited with ${code}: ${log}`)));
  });
  const hostKey = readFileSync(join(dir, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  return { port, user: userInfo().username, hostKey, dir, stop: () => stopProcess(child) };
}

function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
}
