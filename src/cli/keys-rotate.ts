/**
 * `fleetd keys rotate ROLE`: a new key for an online role (targets, snapshot or timestamp), which is also how a
 * stolen one is revoked. The server makes the key (its private half never leaves the server) and this writes
 * the next root naming it, unsigned; root key holders sign it offline (`fleetd keys root sign`) and
 * `fleetd keys root install` hands it back. From then on the server signs with the new key, and devices, which
 * read the new root before any other metadata, refuse what the old key signs. Root keys themselves rotate
 * through `fleetd keys root next` on the offline machine.
 */
import { writeFileSync } from 'node:fs';
import { Key } from '@tufjs/models';
import type { Command } from 'commander';
import { nextRoot, ONLINE_ROLES, type OnlineRole, parseRoot } from '../artifacts/tuf/tuf-root.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

interface Ctx {
  format(): OutputFormat;
  client(): Client;
}

interface RotationKey {
  role: OnlineRole;
  root_version: number;
  key_id: string;
  key: Record<string, unknown>;
}

export function registerRotateKeys(keys: Command, ctx: Ctx): void {
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
      if (!ONLINE_ROLES.includes(role as OnlineRole)) {
        throw new CliError(`"${role}" is not a role to rotate: expected targets, snapshot or timestamp`);
      }
      if (!Number.isInteger(o.expiresDays) || o.expiresDays < 1) {
        throw new CliError(`--expires-days: expected a whole number of days (got ${o.expiresDays})`);
      }
      const client = ctx.client();
      const made = await client.request<RotationKey>('POST', `/api/v1/tuf/keys/${role}/rotate`);
      const rootText = await client.request<unknown>(
        'GET',
        `/api/device/v1/tuf/${made.root_version}.root.json`,
      );
      const current = parseRoot(JSON.stringify(rootText), `root version ${made.root_version}`);
      const next = nextRoot(current, {
        now: Date.now(),
        expiresDays: o.expiresDays,
        roleKeys: { [role]: [Key.fromJSON(made.key_id, made.key as never)] },
      });
      writeFileSync(o.out, JSON.stringify(next.toJSON(), null, 2), { flag: 'wx' });
      if (ctx.format() === 'json') {
        return printJson({ role, key_id: made.key_id, root: o.out, version: next.signed.version });
      }
      console.log(
        `wrote ${o.out} (version ${next.signed.version}, unsigned) naming the new ${role} key ${made.key_id.slice(0, 16)}…`,
      );
      console.log(
        'next: root key holders sign it offline (`fleetd keys root sign`), then `fleetd keys root install` it',
      );
    });
}
