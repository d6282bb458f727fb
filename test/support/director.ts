/**
 * A director ceremony (its own root keys, root and online keys, made like the image repository's) on an
 * "offline" folder, its root and online keys copied into a server's data folder as an operator does.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { initRoot, type RootInitResult } from '../../src/artifacts/tuf/tuf-root.js';
import { tempDir } from './processes.js';

export async function installDirector(dataDir: string, now: number): Promise<RootInitResult> {
  const ceremony = await initRoot({ out: tempDir('fleetd-director-offline-'), threshold: 1, keys: 2, now });
  mkdirSync(join(dataDir, 'director', 'root'), { recursive: true });
  mkdirSync(join(dataDir, 'director', 'keys'), { recursive: true, mode: 0o700 });
  copyFileSync(ceremony.rootFile, join(dataDir, 'director', 'root', '1.root.json'));
  for (const [role, file] of Object.entries(ceremony.onlineKeyFiles)) {
    copyFileSync(file, join(dataDir, 'director', 'keys', `${role}.key`));
  }
  return ceremony;
}
