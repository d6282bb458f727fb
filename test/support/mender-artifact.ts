/**
 * Mender Artifacts built by Debian's real `mender-artifact` (single-file update module: the client copies
 * `hello.txt` into `destDir`), and traditional-PEM signing keys made with openssl, as mender-artifact 3.9 needs.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const hasMenderArtifact = () => spawnSync('sh', ['-c', 'command -v mender-artifact']).status === 0;

function run(command: string, args: string[], cwd: string): void {
  const done = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (done.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${done.stderr}`);
}

/** A private key (`rsa` 3072 or `ec` P-256) and its public half; returns the two file paths. */
export function menderKeyPair(dir: string, kind: 'rsa' | 'ec'): { privateKey: string; publicKey: string } {
  mkdirSync(dir, { recursive: true });
  const privateKey = join(dir, `${kind}.pem`);
  const publicKey = join(dir, `${kind}.pub`);
  if (kind === 'rsa') {
    run('openssl', ['genrsa', '-traditional', '-out', privateKey, '3072'], dir);
    run('openssl', ['rsa', '-in', privateKey, '-pubout', '-out', publicKey], dir);
  } else {
    run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', privateKey], dir);
    run('openssl', ['ec', '-in', privateKey, '-pubout', '-out', publicKey], dir);
  }
  return { privateKey, publicKey };
}

/** A single-file artifact named `name` for `deviceTypes`, writing `text` to `<destDir>/hello.txt`. */
export function buildMenderArtifact(
  dir: string,
  options: { name: string; deviceTypes: string[]; destDir: string; text: string; signKey?: string },
): string {
  const work = join(dir, `build-${options.name}`);
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'dest_dir'), `${options.destDir}\n`);
  writeFileSync(join(work, 'filename'), 'hello.txt\n');
  writeFileSync(join(work, 'permissions'), '644\n');
  // Padding: the client refuses a download under 4096 bytes.
  writeFileSync(join(work, 'hello.txt'), `${options.text}\n${'#'.repeat(8192)}\n`);
  const out = join(dir, `${options.name}.mender`);
  run(
    'mender-artifact',
    [
      'write',
      'module-image',
      '-T',
      'single-file',
      ...options.deviceTypes.flatMap((t) => ['-t', t]),
      '-n',
      options.name,
      '-o',
      out,
      ...['dest_dir', 'filename', 'permissions', 'hello.txt'].flatMap((f) => ['-f', f]),
      ...(options.signKey ? ['-k', options.signKey] : []),
    ],
    work,
  );
  return out;
}
