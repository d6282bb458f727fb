/**
 * Crash-safe file primitives. A state file is either its old or its new content after `kill -9` or power
 * loss at any instant: write a temp file, fsync it, rename it over the old one, fsync the directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode); // the umask may have narrowed or widened `open`'s mode
    await handle.sync();
  } catch (e) {
    await handle.close();
    await rm(temp, { force: true });
    throw e;
  }
  await handle.close();
  await rename(temp, path);
  await fsyncDir(dir); // make the rename itself durable
}

export function writeJsonAtomic(path: string, value: unknown, mode?: number): Promise<void> {
  return writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode);
}

/** The parsed file, or undefined when it does not exist. A corrupt file is an error, never silently ignored. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}

/** Remove a file and make the removal durable. */
export async function removeDurably(path: string): Promise<void> {
  await rm(path, { force: true, recursive: true });
  await fsyncDir(dirname(path));
}

export function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
