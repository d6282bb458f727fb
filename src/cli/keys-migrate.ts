/**
 * `fleetd keys migrate`: has the server's trusted TUF root signed with the pinned release key, so that devices
 * provisioned before TUF can adopt it through a rollout with `adopt_tuf: true` (docs/signing.md, "Moving a fleet
 * to TUF"). The server signs when it holds the release key; with `--key` the key's holder signs here, offline
 * from the server, and hands in the signature. `--show` says what is signed now.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { readPrivateKeyFile, signManifest } from '../artifacts/signing.js';
import type { Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

interface Ctx {
  format(): OutputFormat;
  client(): Client;
}

interface MigrationState {
  root_version: number;
  key_id: string;
  signed_by: 'server' | 'offline';
  signed_at: string;
}

export function registerMigrateKeys(keys: Command, ctx: Ctx): void {
  keys
    .command('migrate')
    .description(
      "sign the server's TUF root with the pinned release key, for devices without TUF to adopt through a rollout with adopt_tuf",
    )
    .option(
      '--key <file>',
      'the release signing key (signing.key) to sign with here; default: the server signs',
    )
    .option('--show', 'show which root is signed for migration, and by whom')
    .action(async (o: { key?: string; show?: boolean }) => {
      const client = ctx.client();
      if (o.show) return print(ctx, await client.request<MigrationState>('GET', '/api/v1/tuf/migration'));
      const { root_version: version } = await client.request<{ root_version: number }>('GET', '/api/v1/tuf');
      let signature: string | undefined;
      if (o.key !== undefined) {
        const privateKey = await readPrivateKeyFile(o.key);
        // The exact bytes the server serves (and devices will check), not a re-serialization of them.
        const dir = mkdtempSync(join(tmpdir(), 'fleetd-migrate-'));
        try {
          const file = join(dir, 'root.json');
          await client.download(`/api/device/v1/tuf/${version}.root.json`, file);
          signature = signManifest(readFileSync(file, 'utf8'), privateKey);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
      const state = await client.request<MigrationState>('POST', '/api/v1/tuf/migration', {
        root_version: version,
        ...(signature !== undefined ? { signature } : {}),
      });
      print(ctx, state);
      if (ctx.format() !== 'json') {
        console.log(
          'next: roll it out like a release, e.g. `fleetd deploy create --release NAME@VERSION --filter EXPR --adopt-tuf` (or adopt_tuf: true in a spec)',
        );
      }
    });
}

function print(ctx: Ctx, state: MigrationState): void {
  if (ctx.format() === 'json') {
    printJson(state);
    return;
  }
  const by = state.signed_by === 'server' ? "the server's release key" : 'a release key, offline';
  console.log(
    `TUF root version ${state.root_version} is signed for migration by ${by} (key id ${state.key_id}, ${state.signed_at})`,
  );
}
