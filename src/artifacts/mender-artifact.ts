/**
 * The check of an uploaded Mender Artifact (format version 3, what mender-client 3.4 installs): an uncompressed
 * tar of `version`, `manifest`, an optional `manifest.sig`, `header.tar.gz` and one `data/NNNN.tar.gz` per payload.
 * Read as a stream, so memory stays flat at any size: every file's SHA-256 is checked against the manifest, the
 * manifest's signature against the keys given, and the header gives the artifact's name and device types (which a
 * deployment must repeat exactly, or the client refuses it).
 */
import { createHash, type KeyObject, verify } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';

export interface MenderArtifact {
  /** `artifact_provides.artifact_name`: what the deployment must name. */
  name: string;
  /** `artifact_depends.device_type`: the device types it installs on. */
  deviceTypes: string[];
  /** The payloads' update module types (e.g. `single-file`). */
  payloadTypes: string[];
  /** Whether the manifest was signed (and the signature verified). */
  signed: boolean;
}

/** Why an artifact is refused: the caller's mistake, so a 400 at the upload. */
export class MenderArtifactError extends Error {}

/** The header is small (metadata and state scripts); anything larger is not a header. */
const MAX_HEADER_BYTES = 4 * 1024 * 1024;
const MAX_MANIFEST_BYTES = 1024 * 1024;
const MANIFEST_LINE = /^([0-9a-f]{64}) {2}(\S+)$/;
const PAYLOAD = /^data\/(\d{4})\.tar(\.gz)?$/;
const PAYLOAD_FILE = /^[\w\-.,]+$/;

/** Stops the reading after the header (`headerOnly`): not a failure. */
const HEADER_READ = new Error('header read');

const fail = (message: string): never => {
  throw new MenderArtifactError(message);
};

/**
 * Reads and checks an artifact. With `headerOnly` it stops after the header (the name and device types of an
 * artifact checked at its upload). A signature is verified against `keys` (none: refused); without `keys` it is
 * not looked at (an artifact checked at its upload already).
 */
export async function readMenderArtifact(
  stream: Readable,
  options: { keys?: readonly KeyObject[] | undefined; headerOnly?: boolean },
): Promise<MenderArtifact> {
  const seen: string[] = [];
  const digests = new Map<string, string>();
  let manifest: Buffer | undefined;
  let signature: string | undefined;
  let header: { name: string; deviceTypes: string[]; payloadTypes: string[] } | undefined;
  const pending: Promise<void>[] = [];
  let failure: unknown;

  const outer = new Parser({ strict: true });
  const done = new Promise<void>((resolve, reject) => {
    outer.on('end', resolve);
    outer.on('error', reject);
    outer.on('warn', (_code: string, message: string | Error) =>
      reject(new MenderArtifactError(`not a Mender artifact: ${String(message)}`)),
    );
  });
  outer.on('entry', (entry: ReadEntry) => {
    const path = entry.path;
    const step = (async () => {
      if (failure) return entry.resume();
      if (entry.type !== 'File') return entry.resume();
      seen.push(path);
      if (seen.length === 1 && path !== 'version')
        fail('the first entry of a Mender artifact must be "version"');
      if (path === 'version') {
        const text = (await bytes(entry, 1024)).toString('utf8');
        digests.set('version', sha256(text));
        const version = parseJson(text, 'version') as { format?: unknown; version?: unknown };
        if (version.format !== 'mender' || version.version !== 3) {
          fail('only Mender artifacts of format version 3 are accepted');
        }
      } else if (path === 'manifest') {
        manifest = await bytes(entry, MAX_MANIFEST_BYTES);
      } else if (path === 'manifest.sig') {
        signature = (await bytes(entry, 4096)).toString('latin1').trim();
      } else if (path === 'header.tar.gz' || path === 'header.tar') {
        if (!seen.includes('manifest')) fail('"manifest" must come before the header');
        const raw = await bytes(entry, MAX_HEADER_BYTES);
        digests.set(path, createHash('sha256').update(raw).digest('hex'));
        header = await readHeader(raw);
      } else {
        const payload = PAYLOAD.exec(path);
        if (!payload) fail(`unexpected entry "${path}" (augmented or compressed with xz is not supported)`);
        if (!seen.some((p) => p.startsWith('header.tar'))) fail(`"${path}" comes before the header`);
        // The payloads are not needed for the header: stop reading there.
        if (options.headerOnly) return void outer.abort(HEADER_READ);
        await hashPayload(entry, `data/${payload![1]}`, digests);
      }
    })().catch((error: unknown) => {
      failure ??= error;
      entry.resume();
    });
    pending.push(step);
  });

  stream.on('error', (error) => outer.abort(error));
  stream.pipe(outer);
  await done.catch((error: unknown) => {
    if (error !== HEADER_READ) failure ??= error;
  });
  stream.destroy();
  await Promise.all(pending);
  if (failure) throw failure instanceof MenderArtifactError ? failure : wrap(failure);
  if (!manifest || !header) fail('a Mender artifact needs "version", "manifest" and "header.tar.gz"');

  const listed = parseManifest(manifest!);
  // Without `keys` the signature was verified before (at the upload): only the header is wanted now.
  if (signature !== undefined && options.keys) verifySignature(manifest!, signature, options.keys);
  for (const [path, digest] of digests) {
    const expected = listed.get(path);
    if (expected === undefined) fail(`"${path}" is not in the manifest`);
    if (expected !== digest) fail(`the checksum of "${path}" does not match the manifest`);
  }
  if (!options.headerOnly) {
    for (const path of listed.keys())
      if (!digests.has(path)) fail(`"${path}" is in the manifest but missing`);
  }
  return { ...header!, signed: signature !== undefined };
}

function wrap(error: unknown): MenderArtifactError {
  return new MenderArtifactError(
    `not a Mender artifact: ${error instanceof Error ? error.message : String(error)}`,
  );
}

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

function parseJson(text: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {}
  return fail(`"${what}" is not a JSON object`);
}

/** `<sha256>  <path>\n` per line, every line newline-terminated (the client drops an unterminated one). */
function parseManifest(raw: Buffer): Map<string, string> {
  const text = raw.toString('utf8');
  if (text !== '' && !text.endsWith('\n')) fail('every line of "manifest" must end with a newline');
  const listed = new Map<string, string>();
  for (const line of text.split('\n').slice(0, -1)) {
    const match = MANIFEST_LINE.exec(line);
    if (!match) fail(`"manifest" has a malformed line: "${line.slice(0, 100)}"`);
    listed.set(match![2]!, match![1]!);
  }
  return listed;
}

/** RSA PKCS#1 v1.5 or ECDSA P-256 (raw r||s) over SHA-256 of the manifest, base64; one of the keys must match. */
function verifySignature(manifest: Buffer, text: string, keys: readonly KeyObject[]): void {
  if (keys.length === 0) {
    fail(
      'the artifact is signed but the server has no Mender artifact key to verify it with (--mender-artifact-key)',
    );
  }
  const signature = Buffer.from(text, 'base64');
  const valid = keys.some((key) => {
    try {
      const dsaEncoding = key.asymmetricKeyType === 'ec' ? 'ieee-p1363' : 'der';
      return verify('sha256', manifest, { key, dsaEncoding }, signature);
    } catch {
      return false;
    }
  });
  if (!valid)
    fail('the signature of the artifact does not verify with any Mender artifact key of the server');
}

/** `header-info` (name, device types, payload types) from the header tar. */
async function readHeader(
  raw: Buffer,
): Promise<{ name: string; deviceTypes: string[]; payloadTypes: string[] }> {
  const files = new Map<string, Buffer>();
  await readTar(raw, async (entry) => {
    files.set(entry.path, await bytes(entry, MAX_HEADER_BYTES));
  });
  const info = files.get('header-info');
  if (!info) fail('the header has no "header-info"');
  const parsed = parseJson(info!.toString('utf8'), 'header-info') as {
    payloads?: unknown;
    artifact_provides?: { artifact_name?: unknown };
    artifact_depends?: { device_type?: unknown };
  };
  const name = parsed.artifact_provides?.artifact_name;
  if (typeof name !== 'string' || name === '') fail('"header-info" names no artifact_name');
  const deviceTypes = parsed.artifact_depends?.device_type;
  if (
    !Array.isArray(deviceTypes) ||
    deviceTypes.length === 0 ||
    !deviceTypes.every((t) => typeof t === 'string')
  ) {
    fail('"header-info" lists no artifact_depends.device_type');
  }
  const payloads = Array.isArray(parsed.payloads) ? parsed.payloads : [];
  const payloadTypes = payloads.map((p: { type?: unknown }) => (typeof p?.type === 'string' ? p.type : ''));
  return { name: name as string, deviceTypes: deviceTypes as string[], payloadTypes };
}

/** Each file of a payload's tar, hashed as the manifest names it (`data/0000/<name>`). */
async function hashPayload(entry: ReadEntry, prefix: string, digests: Map<string, string>): Promise<void> {
  const inner = new Parser({ strict: true });
  const hashing: Promise<void>[] = [];
  const finished = new Promise<void>((resolve, reject) => {
    inner.on('end', resolve);
    inner.on('error', reject);
    inner.on('warn', (_code: string, message: string | Error) => reject(new Error(String(message))));
  });
  inner.on('entry', (file: ReadEntry) => {
    if (file.type !== 'File') return file.resume();
    if (!PAYLOAD_FILE.test(file.path)) {
      file.resume();
      hashing.push(
        Promise.reject(new MenderArtifactError(`payload file name "${file.path}" is not allowed`)),
      );
      return;
    }
    const hash = createHash('sha256');
    hashing.push(
      new Promise<void>((resolve, reject) => {
        file.on('data', (chunk: Buffer) => hash.update(chunk));
        file.on('end', () => {
          digests.set(`${prefix}/${file.path}`, hash.digest('hex'));
          resolve();
        });
        file.on('error', reject);
      }),
    );
  });
  entry.pipe(inner);
  await finished;
  await Promise.all(hashing);
}

/** Every regular file of a small tar (plain or gzip) held in memory. */
async function readTar(raw: Buffer, onFile: (entry: ReadEntry) => Promise<void>): Promise<void> {
  const parser = new Parser({ strict: true });
  const work: Promise<void>[] = [];
  const finished = new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    parser.on('warn', (_code: string, message: string | Error) => reject(new Error(String(message))));
  });
  parser.on('entry', (entry: ReadEntry) => {
    if (entry.type !== 'File') return entry.resume();
    work.push(onFile(entry));
  });
  parser.end(raw);
  await finished;
  await Promise.all(work);
}

/** A stream's bytes, at most `limit` of them. */
function bytes(entry: ReadEntry, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    entry.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length <= limit) chunks.push(chunk);
    });
    entry.on('end', () =>
      length > limit
        ? reject(new MenderArtifactError(`"${entry.path}" is larger than ${limit} bytes`))
        : resolve(Buffer.concat(chunks)),
    );
    entry.on('error', reject);
  });
}
