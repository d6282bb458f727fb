/**
 * Moving devices from the pinned release key alone to TUF (docs/signing.md, "Moving a fleet to TUF"). A device
 * provisioned before TUF trusts one thing: the pinned Ed25519 key. So the root it is to trust from now on comes
 * signed by that key — by the server when it holds the key, else offline by its holder (`fleetd keys migrate
 * --key`) — and a rollout with `adopt_tuf: true` tells its devices to take it. The record is kept beside the
 * repository, as `<data>/tuf/migration.json`.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TufMigration {
  /** The root version devices adopt (the server's trusted root when it was signed). */
  rootVersion: number;
  /** That root's exact bytes as served (`N.root.json`), the text the signature covers. */
  root: string;
  /** Base64 Ed25519 signature of `root` by the pinned release key. */
  signature: string;
  keyId: string;
  /** `server`: signed by the server's own key; `offline`: signed by its holder and handed in. */
  signedBy: 'server' | 'offline';
  signedAt: string;
}

const FILE = 'migration.json';

export async function readTufMigration(tufFolder: string): Promise<TufMigration | undefined> {
  try {
    return JSON.parse(await readFile(join(tufFolder, FILE), 'utf8')) as TufMigration;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function writeTufMigration(tufFolder: string, migration: TufMigration): Promise<void> {
  const path = join(tufFolder, FILE);
  await writeFile(`${path}.tmp`, JSON.stringify(migration), { mode: 0o644 });
  await rename(`${path}.tmp`, path);
}
