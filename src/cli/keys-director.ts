/**
 * `fleetd keys director init|install|rotate` (docs/signing.md, "The director"): the director is a second TUF
 * repository with its own offline root. `init` runs the same ceremony as `fleetd keys root init` (root keys,
 * online keys, 1.root.json) into its own folder; `keys root next|sign` make and sign its next roots like the
 * image repository's; `install` hands one to the server and `rotate` asks the server for a new director key.
 */
import type { Command } from 'commander';
import {
  addInitCommand,
  addInstallCommand,
  DIRECTOR_ROOT,
  type KeysCtx,
  onlineRoleArg,
  whole,
  writeRotationRoot,
} from './keys-root-commands.js';

export function registerDirectorKeys(keys: Command, ctx: KeysCtx): void {
  const director = keys
    .command('director')
    .description("the director's own offline root and online keys: per-device targets (docs/signing.md)");

  addInitCommand(
    director,
    ctx,
    DIRECTOR_ROOT,
    "make the director's root keys, its online keys and its 1.root.json (offline)",
  );
  addInstallCommand(director, ctx, DIRECTOR_ROOT, {
    argument: "the director's next root (N+1.root.json), signed",
    description: "give the server the director's next root; it checks the chain as a device does",
  });

  director
    .command('rotate')
    .argument('<role>', 'targets, snapshot or timestamp')
    .description(
      "a new director online key (a rotation, or the revocation of a stolen one): writes the director's next root naming it, to sign offline",
    )
    .requiredOption('--out <file>', 'where to write N+1.root.json, unsigned')
    .option('--expires-days <days>', 'how long the new root is valid', whole('--expires-days'), 365)
    .action(async (role: string, o: { out: string; expiresDays: number }) => {
      await writeRotationRoot(ctx, DIRECTOR_ROOT, onlineRoleArg(role), o);
    });
}
