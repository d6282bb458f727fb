/**
 * What `fleetd keys root|rotate` and `fleetd keys director` share (keys-root.ts, keys-rotate.ts,
 * keys-director.ts): each repository's offline ceremony (`init`), the next root naming a new online key
 * (`rotate`), and handing a signed next root to the server (`install`). They differ only in how they name the
 * repository and where the server keeps it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Key } from '@tufjs/models';
import type { Command } from 'commander';
import { initRoot, nextRoot, ONLINE_ROLES, type OnlineRole, parseRoot } from '../artifacts/tuf/tuf-root.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

export interface KeysCtx {
  format(): OutputFormat;
  client(): Client;
}

/** The image repository's root or the director's. */
export interface RootOf {
  /** Put before "root keys", "online keys" and "root version": '' or 'director '. */
  label: string;
  /** The repository's folder in the server's data folder, where its online keys go. */
  folder: string;
  /** The `fleetd keys` command that installs its next root: 'root' or 'director'. */
  command: string;
  /** The server's API for it: `${api}/root` takes a signed next root, `${api}/keys/ROLE/rotate` makes a key. */
  api: string;
  /** Where the server gives its current root, version N. */
  currentRootPath: (version: number) => string;
}

export const IMAGE_ROOT: RootOf = {
  label: '',
  folder: 'tuf',
  command: 'root',
  api: '/api/v1/tuf',
  currentRootPath: (version) => `/api/device/v1/tuf/${version}.root.json`,
};

export const DIRECTOR_ROOT: RootOf = {
  label: 'director ',
  folder: 'director',
  command: 'director',
  api: '/api/v1/tuf/director',
  currentRootPath: () => '/api/v1/tuf/director/root',
};

/** The image repository's root is "version 1", the director's "director root version 1". */
const versionName = (of: RootOf, version: number) =>
  of.label ? `${of.label}root version ${version}` : `version ${version}`;

export const whole = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new CliError(`${name}: "${value}" is not a whole number`);
  return n;
};

/** `init`: the root keys, the online keys and 1.root.json signed by all root keys, into a new folder. */
export function addInitCommand(parent: Command, ctx: KeysCtx, of: RootOf, description: string): void {
  parent
    .command('init')
    .description(description)
    .requiredOption('--threshold <k>', `how many ${of.label}root keys must sign a root`, whole('--threshold'))
    .requiredOption('--keys <n>', `how many ${of.label}root keys to make`, whole('--keys'))
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
        `wrote ${r.rootFile} (${versionName(of, 1)}, ${o.threshold} of ${o.keys} root keys must sign)`,
      );
      console.log(`${of.label}root keys (one to each holder, kept offline): ${r.rootKeyFiles.join(' ')}`);
      console.log(
        `${of.label}online keys (to the server's <data>/${of.folder}/keys/): ${Object.values(r.onlineKeyFiles).join(' ')}`,
      );
    });
}

/** `install FILE`: the signed next root to the server, which checks the chain as a device does. */
export function addInstallCommand(
  parent: Command,
  ctx: KeysCtx,
  of: RootOf,
  help: { description: string; argument: string },
): void {
  parent
    .command('install')
    .argument('<file>', help.argument)
    .description(help.description)
    .action(async (file: string) => {
      const r = await ctx
        .client()
        .request<{ root_version: number }>('POST', `${of.api}/root`, readJson(file));
      if (ctx.format() === 'json') return printJson(r);
      console.log(`the server trusts ${of.label}root version ${r.root_version}`);
    });
}

/** A role `rotate` takes: targets, snapshot or timestamp. */
export function onlineRoleArg(role: string): OnlineRole {
  if (!ONLINE_ROLES.includes(role as OnlineRole)) {
    throw new CliError(`"${role}" is not a role to rotate: expected targets, snapshot or timestamp`);
  }
  return role as OnlineRole;
}

/**
 * `rotate ROLE`: the server makes a new key for the online role (its private half never leaves the server) and
 * this writes the next root naming it, unsigned, for the root key holders to sign offline.
 */
export async function writeRotationRoot(
  ctx: KeysCtx,
  of: RootOf,
  role: OnlineRole,
  o: { out: string; expiresDays: number },
): Promise<void> {
  const client = ctx.client();
  const made = await client.request<{ key_id: string; key: Record<string, unknown>; root_version: number }>(
    'POST',
    `${of.api}/keys/${role}/rotate`,
  );
  const rootText = JSON.stringify(
    await client.request<unknown>('GET', of.currentRootPath(made.root_version)),
  );
  const current = parseRoot(rootText, `${of.label}root version ${made.root_version}`);
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
    `wrote ${o.out} (${versionName(of, next.signed.version)}, unsigned) naming the new ${role} key ${made.key_id.slice(0, 16)}…`,
  );
  console.log(
    `next: ${of.label}root key holders sign it offline (\`fleetd keys root sign\`), then \`fleetd keys ${of.command} install\` it`,
  );
}

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
