/**
 * A mirror of the TUF metadata in a plain folder, laid out as `/api/device/v1/tuf/` serves it (`N.root.json`,
 * `N.snapshot.json`, `N.targets.json`, `timestamp.json`, …), for a CDN or a static web server to serve to
 * devices (docs/signing.md, "A mirror for a CDN"). The files are public and protected by their signatures, so
 * any cache may hold them. A file is copied when the mirror lacks it or its size or modification time differ
 * (a version gains signatures in place: CI's on targets, a team's on its delegated role); each copy is whole
 * (a rename), and `timestamp.json` goes last, so a client reading the mirror meanwhile never finds a timestamp
 * naming a snapshot that is not there yet.
 */
import { copyFile, mkdir, readdir, rename, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';

const TIMESTAMP = 'timestamp.json';

/** Copies into `mirror` what the repository folders hold and it lacks; returns the names copied. */
export async function mirrorTufMetadata(sources: readonly string[], mirror: string): Promise<string[]> {
  await mkdir(mirror, { recursive: true });
  const copied: string[] = [];
  let timestamp: string | undefined;
  const copyIfChanged = async (from: string, name: string) => {
    if (await copyWhenChanged(from, join(mirror, name))) copied.push(name);
  };
  for (const folder of sources) {
    for (const name of await listJson(folder)) {
      if (name === TIMESTAMP) timestamp = join(folder, name);
      else await copyIfChanged(join(folder, name), name);
    }
  }
  if (timestamp !== undefined) await copyIfChanged(timestamp, TIMESTAMP);
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

/** Copies whole when `to` is missing or differs in size or modification time; the copy keeps `from`'s times. */
async function copyWhenChanged(from: string, to: string): Promise<boolean> {
  const source = await stat(from);
  const copy = await stat(to).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  // Within a millisecond: the copy's time is set from a Date (whole milliseconds, passed on as float seconds).
  if (copy && copy.size === source.size && Math.abs(copy.mtimeMs - source.mtimeMs) < 1) return false;
  const temp = `${to}.tmp`;
  await copyFile(from, temp);
  await utimes(temp, source.atime, source.mtime);
  await rename(temp, to);
  return true;
}
