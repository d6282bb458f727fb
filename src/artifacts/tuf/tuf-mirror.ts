/**
 * A mirror of the TUF metadata in a plain folder, laid out as `/api/device/v1/tuf/` serves it (`N.root.json`,
 * `N.snapshot.json`, `N.targets.json`, `timestamp.json`, …), for a CDN or a static web server to serve to
 * devices (docs/signing.md, "A mirror for a CDN"). The files are public and protected by their signatures, so
 * any cache may hold them. Versioned files never change and are copied once; `timestamp.json`, the one file
 * that changes in place, is copied last and whole (a rename), so a client reading the mirror meanwhile never
 * finds a timestamp naming a snapshot that is not there yet.
 */
import { copyFile, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

const TIMESTAMP = 'timestamp.json';

/** Copies into `mirror` what the repository folders hold and it lacks; returns the names copied. */
export async function mirrorTufMetadata(sources: readonly string[], mirror: string): Promise<string[]> {
  await mkdir(mirror, { recursive: true });
  const present = new Set(await readdir(mirror));
  const copied: string[] = [];
  let timestamp: string | undefined;
  for (const folder of sources) {
    for (const name of await listJson(folder)) {
      if (name === TIMESTAMP) timestamp = join(folder, name);
      else if (!present.has(name)) {
        await copyWhole(join(folder, name), join(mirror, name));
        copied.push(name);
      }
    }
  }
  if (timestamp !== undefined && !(await sameBytes(timestamp, join(mirror, TIMESTAMP)))) {
    await copyWhole(timestamp, join(mirror, TIMESTAMP));
    copied.push(TIMESTAMP);
  }
  return copied;
}

async function listJson(folder: string): Promise<string[]> {
  try {
    return (await readdir(folder)).filter((name) => name.endsWith('.json')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

async function copyWhole(from: string, to: string): Promise<void> {
  const temp = `${to}.tmp`;
  await copyFile(from, temp);
  await rename(temp, to);
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  try {
    return (await readFile(a)).equals(await readFile(b));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
