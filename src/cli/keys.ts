/** `fleetd keys generate` */
import type { Command } from 'commander';
import { writeKeyPairFiles } from '../artifacts/signing.js';
import type { OutputFormat } from './output.js';
import { printJson } from './output.js';

export function registerKeys(program: Command, ctx: { format(): OutputFormat }): void {
  program
    .command('keys')
    .description('release signing keys')
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
}
