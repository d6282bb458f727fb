/**
 * `fleetd keys root init|next|sign` run offline, on the operator's machine, with files only (docs/signing.md);
 * `fleetd keys root install` hands a signed next root to the server, which checks it as a device would.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Key } from '@tufjs/models';
import type { Command } from 'commander';
import { tufKey } from '../artifacts/tuf/tuf-keys.js';
import {
  checkRootSuccession,
  nextRoot,
  ONLINE_ROLES,
  type OnlineRole,
  readRootFile,
  signRoot,
} from '../artifacts/tuf/tuf-root.js';
import { CliError } from './client.js';
import { addInitCommand, addInstallCommand, IMAGE_ROOT, type KeysCtx, whole } from './keys-root-commands.js';

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerRootKeys(keys: Command, ctx: KeysCtx): void {
  const root = keys
    .command('root')
    .description('the offline TUF root: k of n keys sign it (docs/signing.md)');

  addInitCommand(
    root,
    ctx,
    IMAGE_ROOT,
    'make n root keys, the online keys and 1.root.json signed by all root keys (offline)',
  );

  root
    .command('next')
    .argument('<current>', 'the current root (N.root.json)')
    .description('write the next root version, unsigned, for a rotation of root keys or a new expiry')
    .requiredOption('--out <file>', 'where to write N+1.root.json')
    .option(
      '--root-key <file>',
      "a new root key holder's key file (only its public half is read); repeat for each",
      collect,
      [],
    )
    .option('--threshold <k>', 'how many root keys must sign from this version on', whole('--threshold'))
    .option(
      '--online-key <role=file>',
      'replace an online key (targets, snapshot or timestamp), e.g. after the server was compromised',
      collect,
      [],
    )
    .option(
      '--offline-targets-key <file>',
      "an offline (CI) targets key that must sign targets besides the server's; repeat for each",
      collect,
      [],
    )
    .option('--expires-days <days>', 'how long the new root is valid', whole('--expires-days'), 365)
    .action(
      async (
        current: string,
        o: {
          out: string;
          rootKey: string[];
          onlineKey: string[];
          offlineTargetsKey: string[];
          threshold?: number;
          expiresDays: number;
        },
      ) => {
        const roleKeys: Partial<Record<OnlineRole, Key[]>> = {};
        for (const pair of o.onlineKey) {
          const [role, file] = pair.split('=', 2);
          if (!ONLINE_ROLES.includes(role as OnlineRole) || !file) {
            throw new CliError(
              `--online-key: "${pair}" is not ROLE=FILE with ROLE targets, snapshot or timestamp`,
            );
          }
          roleKeys[role as OnlineRole] = [tufKey(createPublicKey(readFileSync(file)))];
        }
        const now = await readRootFile(current);
        const rootKeys = o.rootKey.map((f) => tufKey(createPublicKey(readFileSync(f))));
        const offlineTargetsKeys = o.offlineTargetsKey.map((f) => tufKey(createPublicKey(readFileSync(f))));
        const next = nextRoot(now, {
          offlineTargetsKeys,
          now: Date.now(),
          expiresDays: o.expiresDays,
          ...(rootKeys.length ? { rootKeys } : {}),
          ...(o.threshold === undefined ? {} : { threshold: o.threshold }),
          roleKeys,
        });
        writeFileSync(o.out, JSON.stringify(next.toJSON(), null, 2), { flag: 'wx' });
        console.log(
          `wrote ${o.out} (version ${next.signed.version}, unsigned): sign it with a threshold of the old and of the new root keys`,
        );
      },
    );

  root
    .command('sign')
    .argument('<file>', 'the root to sign (N.root.json), changed in place')
    .description("add root key holders' signatures; says whether the thresholds are met")
    .requiredOption('--key <file>', 'a root key file; repeat for each signer present', collect, [])
    .option('--previous <file>', 'the root before it, to check the chain (N-1.root.json)')
    .action(async (file: string, o: { key: string[]; previous?: string }) => {
      const md = await readRootFile(file);
      await signRoot(md, o.key);
      writeFileSync(file, JSON.stringify(md.toJSON(), null, 2));
      const count = Object.keys(md.signatures).length;
      let ready = 'the thresholds are met';
      try {
        if (o.previous) checkRootSuccession(await readRootFile(o.previous), md);
        else md.verifyDelegate('root', md);
      } catch (e) {
        ready = `not ready yet: ${(e as Error).message}`;
      }
      console.log(`${file}: ${count} signature(s); ${ready}`);
    });

  addInstallCommand(root, ctx, IMAGE_ROOT, {
    argument: 'the next root (N+1.root.json), signed',
    description: 'give the server the next root; it checks the chain as a device does, and devices follow',
  });
}
