/**
 * Operator passwords: argon2id (memory-hard, OWASP's first choice) from a maintained native binding. The
 * stored string carries its parameters and salt, so stronger settings later still verify old hashes.
 */
import { hash, verify } from '@node-rs/argon2';

export function hashPassword(password: string): Promise<string> {
  // @node-rs/argon2's defaults are argon2id, 19 MiB, 2 passes: OWASP's recommended minimum.
  return hash(password);
}

/** Never throws on a malformed stored hash: it just does not match. */
export async function passwordMatches(password: string, stored: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}
