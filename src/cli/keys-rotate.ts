/**
 * `fleetd keys rotate ROLE`: a new key for an online role (targets, snapshot or timestamp), which is also how a
 * stolen one is revoked. The server makes the key (its private half never leaves the server) and this writes
 * the next root naming it, unsigned; root key holders sign it offline (`fleetd keys root sign`) and
 * `fleetd keys root install` hands it back. From then on the server signs with the new key, and devices, which
 * read the new root before any other metadata, refuse what the old key signs. Root keys themselves rotate
 * through `fleetd keys root next` on the offline machine.
 */
import type { Command } from 'commander';
import { CliError } from './client.js';
import { IMAGE_ROOT, type KeysCtx, onlineRoleArg, writeRotationRoot } from './keys-root-commands.js';

export function registerRotateKeys(keys: Command, ctx: KeysCtx): void {
  keys
    .command('rotate')
    .argument('<role>', 'targets, snapshot or timestamp (root: `fleetd keys root next`)')
    .description(
      'a new online key (a rotation, or the revocation of a stolen one): writes the next root naming it, to sign offline',
    )
    .requiredOption('--out <file>', 'where to write N+1.root.json, unsigned')
    .option('--expires-days <days>', 'how long the new root is valid', (v) => Number(v), 365)
    .action(async (role: string, o: { out: string; expiresDays: number }) => {
      if (role === 'root') {
        throw new CliError(
          'root keys rotate offline: `fleetd keys root next CURRENT --root-key FILE ... --out NEXT` (docs/signing.md)',
        );
      }
      const online = onlineRoleArg(role);
      if (!Number.isInteger(o.expiresDays) || o.expiresDays < 1) {
        throw new CliError(`--expires-days: expected a whole number of days (got ${o.expiresDays})`);
      }
      await writeRotationRoot(ctx, IMAGE_ROOT, online, o);
    });
}
