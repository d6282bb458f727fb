/**
 * Wraps a plain file into a Mender Artifact v3 for the `single-file` update module (which copies it to `destDir` on
 * the device), optionally signed (RSA PKCS#1 v1.5 or ECDSA P-256 as raw r||s over SHA-256, as mender-client
 * checks it). The layout is the one mender-artifact writes: `version`, `manifest`, `manifest.sig`, `header.tar.gz`,
 * `data/0000.tar.gz`, every file listed in the manifest with its SHA-256, each line newline-terminated.
 */
import { createHash, type KeyObject, sign } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { create } from 'tar';

export interface WrapOptions {
  /** The file to install. */
  file: string;
  /** The artifact name (what the device reports as installed afterwards). */
  name: string;
  deviceTypes: string[];
  /** The absolute directory on the device the file is copied into. */
  destDir: string;
  /** The file's name there (default: the file's own name). */
  filename?: string;
  /** Octal mode of the installed file (default 644). */
  permissions?: string;
  signKey?: KeyObject;
}

const NAME = /^[\w\-.,]+$/;

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Writes the artifact to `out`. */
export async function wrapMenderArtifact(options: WrapOptions, out: string): Promise<void> {
  const filename = options.filename ?? basename(options.file);
  if (!NAME.test(filename) || ['dest_dir', 'filename', 'permissions'].includes(filename)) {
    throw new Error(
      `the file name "${filename}" cannot be a payload file name (letters, digits, - . , _ only)`,
    );
  }
  if (!options.destDir.startsWith('/'))
    throw new Error(`the destination "${options.destDir}" must be absolute`);
  if (options.deviceTypes.length === 0) throw new Error('at least one device type is needed');
  const work = await mkdtemp(join(tmpdir(), 'fleetd-mender-'));
  try {
    const payload = join(work, 'payload');
    const header = join(work, 'header');
    await mkdir(payload);
    await mkdir(join(header, 'headers', '0000'), { recursive: true });
    await writeFile(join(payload, 'dest_dir'), `${options.destDir}\n`);
    await writeFile(join(payload, 'filename'), `${filename}\n`);
    await writeFile(join(payload, 'permissions'), `${options.permissions ?? '644'}\n`);
    await copyFile(options.file, join(payload, filename));
    const payloadFiles = ['dest_dir', 'filename', 'permissions', filename];

    await writeFile(
      join(header, 'header-info'),
      JSON.stringify({
        payloads: [{ type: 'single-file' }],
        artifact_provides: { artifact_name: options.name },
        artifact_depends: { device_type: options.deviceTypes },
      }),
    );
    await writeFile(
      join(header, 'headers', '0000', 'type-info'),
      JSON.stringify({
        type: 'single-file',
        artifact_provides: { 'rootfs-image.single-file.version': options.name },
        clears_artifact_provides: ['rootfs-image.single-file.*'],
      }),
    );
    const outer = join(work, 'outer');
    await mkdir(join(outer, 'data'), { recursive: true });
    // Regular-file entries only, no owner or time: the same bytes for the same input.
    const tarOptions = { portable: true, noDirRecurse: true, mtime: new Date(0) } as const;
    await create({ ...tarOptions, gzip: true, cwd: header, file: join(outer, 'header.tar.gz') }, [
      'header-info',
      'headers/0000/type-info',
    ]);
    await create(
      { ...tarOptions, gzip: true, cwd: payload, file: join(outer, 'data', '0000.tar.gz') },
      payloadFiles,
    );
    await writeFile(join(outer, 'version'), JSON.stringify({ format: 'mender', version: 3 }));

    const lines: string[] = [];
    for (const f of payloadFiles) lines.push(`${await sha256Of(join(payload, f))}  data/0000/${f}\n`);
    lines.push(`${await sha256Of(join(outer, 'header.tar.gz'))}  header.tar.gz\n`);
    lines.push(`${await sha256Of(join(outer, 'version'))}  version\n`);
    const manifest = Buffer.from(lines.join(''));
    await writeFile(join(outer, 'manifest'), manifest);
    const entries = ['version', 'manifest'];
    if (options.signKey) {
      const key = options.signKey;
      const dsaEncoding = key.asymmetricKeyType === 'ec' ? 'ieee-p1363' : 'der';
      if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') {
        throw new Error('mender-client verifies RSA or EC P-256 signatures only');
      }
      await writeFile(
        join(outer, 'manifest.sig'),
        sign('sha256', manifest, { key, dsaEncoding }).toString('base64'),
      );
      entries.push('manifest.sig');
    }
    entries.push('header.tar.gz', 'data/0000.tar.gz');
    await create({ ...tarOptions, cwd: outer, file: out }, entries);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
