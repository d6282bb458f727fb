/**
 * `fleetd admin-token reset`: local recovery of the admin token, for whoever can write the data folder (and
 * reach the database). Works while the server runs: the server checks tokens in the database.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ADMIN_TOKEN_FILE, resetAdminToken } from '../server/admin-token.js';
import { openStore } from '../store/open.js';
import { CliError } from './client.js';

export function registerAdminToken(program: Command): void {
  program
    .command('admin-token')
    .description('the admin API token kept in the data folder')
    .command('reset')
    .description('make a new admin token (the old one stops working) and save it in <data>/admin-token')
    .option(
      '--db <url>',
      'postgres://… URL or SQLite file the server uses (default: <data>/fleetd.db)',
      process.env.FLEETD_DB,
    )
    .action(async (opts: { db?: string }) => {
      const dataDir = program.opts<{ data?: string }>().data ?? process.env.FLEETD_DATA ?? 'fleetd-data';
      if (!existsSync(dataDir)) {
        throw new CliError(`${dataDir} is not a FleetD data folder: pass the server's --data DIR`);
      }
      if (opts.db === undefined && !existsSync(join(dataDir, 'fleetd.db'))) {
        throw new CliError(
          `${dataDir} holds no fleetd.db: pass the server's --data DIR, and --db URL if it uses PostgreSQL`,
        );
      }
      const store = await openStore({ db: opts.db, dataDir });
      try {
        const file = join(dataDir, ADMIN_TOKEN_FILE);
        const { token, revoked } = await resetAdminToken(store, file, Date.now(), 'local:admin-token reset');
        console.log(
          `New admin API token (saved in ${file}, mode 0600; ${revoked} old admin token(s) revoked):\n  ${token}`,
        );
      } finally {
        await store.close();
      }
    });
}
