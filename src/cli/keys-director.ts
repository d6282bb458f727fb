/**
 * `fleetd keys director init|install|rotate` (docs/signing.md, "The director"): the director is a second TUF
 * repository with its own offline root. `init` runs the same ceremony as `fleetd keys root init` (root keys,
 * online keys, 1.root.json) into its own folder; `keys root next|sign` make and sign its next roots like the
 * image repository's; `install` hands one to the server and `rotate` asks the server for a new director key.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Key } from '@tufjs/models';
import type { Command } from 'commander';
import { initRoot, nextRoot, ONLINE_ROLES, type OnlineRole, parseRoot } from '../artifacts/tuf/tuf-root.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

interface Ctx {
  format(): OutputFormat;
  client(): Client;
}

const whole = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new CliError(`${name}: "${value}" is not a whole number`);
  return n;
};

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CliError(`${file} is not JSON: ${(e as Error).message}`);
  }
}

export function registerDirectorKeys(keys: Command, ctx: Ctx): void {
  const director = keys
    .command('director')
    .description("the director's own offline root and online keys: per-device targets (docs/signing.md)");

  director
    .command('init')
    .description("make the director's root keys, its online keys and its 1.root.json (offline)")
    .requiredOption('--threshold <k>', 'how many director root keys must sign a root', whole('--threshold'))
    .requiredOption('--keys <n>', 'how many director root keys to make', whole('--keys'))
    .requiredOption('--out <dir>', 'folder to write into (kept offline; root-keys/ go to their holders)')
    .option('--expires-days <days>', 'how long the root is valid', whole('--expires-days'), 365)
    .action(async (o: { threshold: number; keys: number; out: string; expiresDays: number }) => {
      const r = await initRoot({
        out: o.out,
        threshold: o.threshold,
        keys: o.keys,
        now: Date.now(),
        expiresDays: o.expiresDays,
      });
      if (ctx.format() === 'json') {
        return printJson({
          root: r.rootFile,
          root_keys: r.rootKeyFiles,
          online_keys: r.onlineKeyFiles,
          version: r.root.signed.version,
        });
      }
      console.log(
        `wrote ${r.rootFile} (director root version 1, ${o.threshold} of ${o.keys} root keys must sign)`,
      );
      console.log(`director root keys (one to each holder, kept offline): ${r.rootKeyFiles.join(' ')}`);
      console.log(
        `director online keys (to the server's <data>/director/keys/): ${Object.values(r.onlineKeyFiles).join(' ')}`,
      );
    });

  director
    .command('install')
    .argument('<file>', "the director's next root (N+1.root.json), signed")
    .description("give the server the director's next root; it checks the chain as a device does")
    .action(async (file: string) => {
      const r = await ctx
        .client()
        .request<{ root_version: number }>('POST', '/api/v1/tuf/director/root', readJson(file));
      if (ctx.format() === 'json') return printJson(r);
      console.log(`the server trusts director root version ${r.root_version}`);
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
      if (!ONLINE_ROLES.includes(role as OnlineRole)) {
        throw new CliError(`"${role}" is not a role to rotate: expected targets, snapshot or timestamp`);
      }
      const client = ctx.client();
      const made = await client.request<{
        key_id: string;
        key: Record<string, unknown>;
        root_version: number;
      }>('POST', `/api/v1/tuf/director/keys/${role}/rotate`);
      const rootText = JSON.stringify(await client.request<unknown>('GET', '/api/v1/tuf/director/root'));
      const current = parseRoot(rootText, `director root version ${made.root_version}`);
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
        `wrote ${o.out} (director root version ${next.signed.version}, unsigned) naming the new ${role} key ${made.key_id.slice(0, 16)}…`,
      );
      console.log(
        'next: director root key holders sign it offline (`fleetd keys root sign`), then `fleetd keys director install` it',
      );
    });
}
