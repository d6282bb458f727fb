import { copyFileSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNewTufKey } from './tuf-keys.js';
import { initRoot, nextRoot, type RootChange, signRoot } from './tuf-root.js';
import { installNextRoot, nextOnlineKey, openTrustedRoot, type RepositoryName } from './tuf-trusted-root.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const folder = () => mkdtempSync(join(tmpdir(), 'fleetd-trusted-root-'));

/** A repository folder holding version 1 of a root from an offline ceremony, and that ceremony's files. */
async function repository() {
  const ceremony = await initRoot({ out: folder(), threshold: 1, keys: 1, now: NOW });
  const dir = folder();
  mkdirSync(join(dir, 'root'));
  mkdirSync(join(dir, 'keys'));
  copyFileSync(ceremony.rootFile, join(dir, 'root', '1.root.json'));
  for (const [role, file] of Object.entries(ceremony.onlineKeyFiles)) {
    copyFileSync(file, join(dir, 'keys', `${role}.key`));
  }
  const signedNext = async (change: Omit<RootChange, 'now'>, now = NOW) => {
    const next = nextRoot(ceremony.root, { now, ...change });
    await signRoot(next, ceremony.rootKeyFiles);
    return JSON.stringify(next.toJSON());
  };
  return { dir, signedNext };
}

const TUF: RepositoryName = { folder: 'tuf', label: '' };
const DIRECTOR: RepositoryName = { folder: 'director', label: 'director ' };

describe('the trusted root of a server-side TUF repository', () => {
  it('is absent without a first root, and follows a rotation to the key made for it', async () => {
    expect(await openTrustedRoot(folder(), TUF)).toBeUndefined();
    const { dir, signedNext } = await repository();
    const trusted = (await openTrustedRoot(dir, TUF))!;
    const key = await nextOnlineKey(dir, 'timestamp');
    expect((await nextOnlineKey(dir, 'timestamp')).keyID).toBe(key.keyID);

    const text = await signedNext({ roleKeys: { timestamp: [key] } });
    const next = await installNextRoot(dir, TUF, trusted, text, NOW);
    expect(next.root.signed.version).toBe(2);
    expect(next.signers.timestamp.keyId).toBe(key.keyID);
    expect(next.signers.snapshot.keyId).toBe(trusted.signers.snapshot.keyId);
    expect(existsSync(join(dir, 'keys', 'timestamp.next.key'))).toBe(false);
    expect((await openTrustedRoot(dir, TUF))!.signers.timestamp.keyId).toBe(key.keyID);
  });

  it.each([
    [TUF, ''],
    [DIRECTOR, 'director '],
  ])(
    'refuses an expired root and one naming keys the server lacks, naming its repository',
    async (name, label) => {
      const { dir, signedNext } = await repository();
      const trusted = (await openTrustedRoot(dir, name))!;
      const expired = await signedNext({ expiresDays: 1 }, NOW - 2 * 86_400_000);
      await expect(installNextRoot(dir, name, trusted, expired, NOW)).rejects.toThrow(
        `${label}root version 2 has expired already`,
      );

      const stranger = await writeNewTufKey(join(folder(), 'stranger.key'));
      const text = await signedNext({ roleKeys: { snapshot: [stranger] } });
      await expect(installNextRoot(dir, name, trusted, text, NOW)).rejects.toThrow(
        `${label}root version 2 does not name this server's ${label}snapshot key ` +
          `(${trusted.signers.snapshot.keyId.slice(0, 16)}…): put the snapshot key made with that root in ${name.folder}/keys/snapshot.key`,
      );
      expect(existsSync(join(dir, 'root', '2.root.json'))).toBe(false);
    },
  );
});
