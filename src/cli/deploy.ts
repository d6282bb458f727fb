/** `fleetd deploy …`: assignments now; rollouts build on the same records. */
import type { Command } from 'commander';
import type { Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

interface UpdateJson {
  id: string;
  device_id: string;
  state: string;
  progress: number | null;
  error: string | null;
  updated_at: string;
}

export function registerDeploy(program: Command, ctx: Ctx): void {
  const deploy = program.command('deploy').description('deliver releases to devices');

  deploy
    .command('assign')
    .argument('<release>', 'name@version or release id')
    .requiredOption('--devices <id...>', 'the devices to update')
    .option(
      '--action <action>',
      'install, download_only (stage only) or switch (to a staged release)',
      'install',
    )
    .description('assign a release to explicit devices; they take it on their next heartbeat')
    .action(async (release: string, opts: { devices: string[]; action: string }) => {
      const r = await ctx.client().request<{
        assigned: UpdateJson[];
        skipped: Array<{ device_id: string; reason: string }>;
      }>('POST', '/api/v1/updates/assign', { release, devices: opts.devices, action: opts.action });
      if (ctx.format() === 'json') return printJson(r);
      for (const u of r.assigned) console.log(`${u.device_id}: assigned (${u.id})`);
      for (const s of r.skipped) console.log(`${s.device_id}: skipped — ${s.reason}`);
    });

  deploy
    .command('updates')
    .description('device updates, newest first')
    .option('--device <id>', "one device's updates")
    .option('--release <release>', "one release's updates")
    .action(async (opts: { device?: string; release?: string }) => {
      const params = new URLSearchParams();
      if (opts.device) params.set('device', opts.device);
      if (opts.release) params.set('release', opts.release);
      const r = await ctx.client().request<{ updates: UpdateJson[] }>('GET', `/api/v1/updates?${params}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['ID', 'DEVICE', 'STATE', 'PROGRESS', 'ERROR', 'UPDATED'],
          r.updates.map((u) => [
            u.id,
            u.device_id,
            u.state,
            u.progress === null ? null : `${u.progress}%`,
            u.error,
            u.updated_at,
          ]),
        ),
      );
    });
}
