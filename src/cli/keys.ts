/** `fleetd keys generate`, and the TUF keys: `fleetd keys root init|next|sign|install` (keys-root.ts),
 * `fleetd keys rotate ROLE` (keys-rotate.ts), `fleetd keys sign-targets` (keys-sign-targets.ts), `fleetd keys
 * migrate` (keys-migrate.ts) and the delegated targets roles, `fleetd keys delegate|undelegate|delegations
 * ls|sign-delegated` (keys-delegate.ts). */
import type { Command } from 'commander';
import { writeKeyPairFiles } from '../artifacts/signing.js';
import type { Client } from './client.js';
import { registerDelegations } from './keys-delegate.js';
import { registerDirectorKeys } from './keys-director.js';
import { registerMigrateKeys } from './keys-migrate.js';
import { registerRootKeys } from './keys-root.js';
import { registerRotateKeys } from './keys-rotate.js';
import { registerSignTargets } from './keys-sign-targets.js';
import type { OutputFormat } from './output.js';
import { printJson } from './output.js';

export function registerKeys(program: Command, ctx: { format(): OutputFormat; client(): Client }): void {
  const keys = program.command('keys').description('release signing keys');
  keys
    .command('generate')
    .description('make an Ed25519 key pair: signing.key (mode 0600, keep it secret) and signing.pub')
    .option('--out <dir>', 'folder to write the two files into', '.')
    .action(async (opts: { out: string }) => {
      const pair = await writeKeyPairFiles(opts.out);
      if (ctx.format() === 'json') return printJson({ key_id: pair.keyId, public_key: pair.publicKeyPem });
      console.log(
        `wrote ${opts.out}/signing.key (private, mode 0600) and ${opts.out}/signing.pub — key id ${pair.keyId}`,
      );
    });
  registerRootKeys(keys, ctx);
  registerRotateKeys(keys, ctx);
  registerSignTargets(keys, ctx);
  registerMigrateKeys(keys, ctx);
  registerDelegations(keys, ctx);
  registerDirectorKeys(keys, ctx);
}
