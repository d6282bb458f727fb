/**
 * Wraps a plain file into an SWUpdate image (`.swu`) for devices that run SWUpdate: a cpio archive in the `newc`
 * format whose first member is `sw-description` (one `files` entry written by SWUpdate's rawfile handler to
 * `path` on the device, with its SHA-256 and the hardware compatibility), then `sw-description.sig` (a CMS
 * signature, as SWUpdate checks it with `-k CERT`, made by the `openssl` command from the operator's certificate
 * and key), then the file. So one release reaches FleetD agents, Mender devices (mender-writer.ts) and SWUpdate.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface SwuWrapOptions {
  /** The file to install. */
  file: string;
  /** The version sw-description declares (what the device reports once installed). */
  version: string;
  /** The hardware revisions it installs on (SWUpdate's `hardware-compatibility`, checked against `-H`). */
  hardwareCompatibility: string[];
  /** The absolute path on the device the rawfile handler writes. */
  path: string;
  /** The signer's certificate and private key (PEM files); the device checks against the certificate. */
  signCert: string;
  signKey: string;
}

/** What a libconfig string may hold here without escaping: no quotes, backslashes or control characters. */
const PLAIN = /^[\w\-.,:/+@ ]+$/;

function plain(field: string, value: string): string {
  if (!PLAIN.test(value)) {
    throw new Error(`${field}: "${value}" may hold letters, digits, spaces and - . , : / + @ _ only`);
  }
  return value;
}

/** sw-description in libconfig syntax, as SWUpdate reads it. */
export function swDescription(o: SwuWrapOptions, sha256: string): string {
  if (!o.path.startsWith('/')) throw new Error(`path: "${o.path}" must be absolute`);
  if (o.hardwareCompatibility.length === 0) throw new Error('at least one hardware revision is needed');
  const revisions = o.hardwareCompatibility.map((r) => `"${plain('hardware compatibility', r)}"`);
  return [
    'software =',
    '{',
    `\tversion = "${plain('version', o.version)}";`,
    `\thardware-compatibility: [ ${revisions.join(', ')} ];`,
    '\tfiles: (',
    '\t\t{',
    `\t\t\tfilename = "${plain('file name', basename(o.file))}";`,
    `\t\t\tpath = "${plain('path', o.path)}";`,
    `\t\t\tsha256 = "${sha256}";`,
    '\t\t\tproperties = { create-destination = "true"; };',
    '\t\t}',
    '\t);',
    '};',
    '',
  ].join('\n');
}

/** A `newc` cpio header for a regular file (mode 0644) of `size` bytes, its name and the padding after it. */
export function cpioHeader(name: string, size: number, inode: number): Buffer {
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  const nameBytes = Buffer.from(`${name}\0`, 'latin1');
  const fields = [inode, 0o100644, 0, 0, 1, 0, size, 0, 0, 0, 0, nameBytes.length, 0];
  const head = Buffer.concat([Buffer.from(`070701${fields.map(hex).join('')}`, 'latin1'), nameBytes]);
  return Buffer.concat([head, Buffer.alloc(pad4(head.length))]);
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** The CMS signature SWUpdate checks (`openssl cms -sign … -outform DER -nosmimecap -binary`). */
function cmsSign(file: string, cert: string, key: string): Buffer {
  const signed = spawnSync(
    'openssl',
    [
      'cms',
      '-sign',
      '-in',
      file,
      '-signer',
      cert,
      '-inkey',
      key,
      '-outform',
      'DER',
      '-nosmimecap',
      '-binary',
    ],
    { maxBuffer: 1024 * 1024 },
  );
  if (signed.error)
    throw new Error(`signing sw-description needs the openssl command: ${signed.error.message}`);
  if (signed.status !== 0) {
    const why = signed.stderr.toString('utf8').trim().split('\n')[0] ?? '';
    throw new Error(`signing sw-description failed: ${why}`);
  }
  return signed.stdout;
}

/** Writes the .swu to `out`. */
export async function wrapSwu(options: SwuWrapOptions, out: string): Promise<void> {
  const description = swDescription(options, await sha256Of(options.file));
  const work = await mkdtemp(join(tmpdir(), 'fleetd-swu-'));
  try {
    const descriptionFile = join(work, 'sw-description');
    await writeFile(descriptionFile, description);
    const signature = cmsSign(descriptionFile, options.signCert, options.signKey);
    const { size } = await stat(options.file);
    const sink = createWriteStream(out);
    const write = (bytes: Buffer) =>
      new Promise<void>((resolve, reject) => sink.write(bytes, (e) => (e ? reject(e) : resolve())));
    let inode = 1;
    for (const [name, bytes] of [
      ['sw-description', await readFile(descriptionFile)],
      ['sw-description.sig', signature],
    ] as const) {
      await write(
        Buffer.concat([cpioHeader(name, bytes.length, inode++), bytes, Buffer.alloc(pad4(bytes.length))]),
      );
    }
    await write(cpioHeader(basename(options.file), size, inode++));
    await pipeline(createReadStream(options.file), sink, { end: false });
    await write(Buffer.concat([Buffer.alloc(pad4(size)), cpioHeader('TRAILER!!!', 0, 0)]));
    await new Promise<void>((resolve, reject) => sink.end((e?: Error | null) => (e ? reject(e) : resolve())));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
