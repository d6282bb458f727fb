/**
 * The admin API token: made on the first start and written to `<data>/admin-token` (0600). Whoever can read
 * and write the data folder holds the server's secrets anyway, so that access is the authority to replace a
 * lost token (`fleetd admin-token reset`): no network path can do it.
 */
import { hashSecret, newId, newSecret } from '../registry/credentials.js';
import type { Store } from '../store/store.js';
import { writeSecretFile } from './secret-file.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

/** Makes the admin token on a store that has no API token yet; returns it, or undefined when one exists. */
export async function ensureAdminToken(store: Store, file: string, now: number): Promise<string | undefined> {
  if ((await store.countApiTokens()) > 0) return undefined;
  const token = newSecret('admin');
  await store.createApiToken(
    { id: newId('tok'), name: 'admin', role: 'admin', createdAt: now },
    hashSecret(token),
  );
  writeSecretFile(file, `${token}\n`);
  return token;
}

/**
 * Replaces the admin token: the new one is valid at once on every replica, the old one revoked, and the file
 * rewritten. Returns the new token and how many old ones were revoked.
 */
export async function resetAdminToken(
  store: Store,
  file: string,
  now: number,
  actor: string,
): Promise<{ token: string; revoked: number }> {
  const token = newSecret('admin');
  const revoked = await store.replaceApiToken(
    { id: newId('tok'), name: 'admin', role: 'admin', createdAt: now },
    hashSecret(token),
    actor,
  );
  writeSecretFile(file, `${token}\n`);
  return { token, revoked };
}
