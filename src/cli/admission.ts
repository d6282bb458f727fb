/** `fleetd devices pending|accept|reject`: the approval queue (docs/enrollment.md). */
import type { Command } from 'commander';
import type { AdmissionReplyJson, WaitingReplyJson } from '../protocol/admission.js';
import { CliError, type Client } from './client.js';
import { ago, type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

export function registerAdmission(devices: Command, ctx: Ctx): void {
  devices
    .command('pending')
    .description('devices waiting for approval, oldest request first, with the fingerprint of their key')
    .option('--rejected', 'list the rejected devices instead')
    .option('--limit <n>', 'how many at most (up to 1000)', '100')
    .action(async (opts: { rejected?: boolean; limit: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new CliError(`--limit: "${opts.limit}" is not an integer from 1 to 1000`);
      const params = new URLSearchParams({ limit: String(limit) });
      if (opts.rejected) params.set('admission', 'rejected');
      const r = await ctx.client().request<WaitingReplyJson>('GET', `/api/v1/devices/pending?${params}`);
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['ID', 'NAME', 'HARDWARE', 'ASKED', 'KEY FINGERPRINT'],
          r.devices.map((w) => [
            w.device.id,
            w.device.name,
            w.device.hardware_type,
            ago(w.requested_at),
            w.key_fingerprint,
          ]),
        ),
      );
    });

  for (const decision of ['accept', 'reject'] as const) {
    devices
      .command(decision)
      .argument('[ids...]', 'device ids')
      .description(
        decision === 'accept'
          ? 'accept devices waiting for approval: each gets its credential or certificate when it asks again'
          : 'reject devices waiting for approval: they are refused when they ask again',
      )
      .option(
        '-f, --filter <expr>',
        "the devices a filter selects, e.g. 'admission = pending and hardware = pos-x200'",
      )
      .action(async (ids: string[], opts: { filter?: string }) => {
        if (ids.length > 0 === (opts.filter !== undefined))
          throw new CliError(`devices ${decision}: give device ids or --filter, one of the two`);
        const body = opts.filter === undefined ? { ids } : { filter: opts.filter };
        const r = await ctx.client().request<AdmissionReplyJson>('POST', `/api/v1/devices/${decision}`, body);
        if (ctx.format() === 'json') printJson(r);
        else {
          for (const item of r.results) {
            if (item.ok) console.log(`${item.id}: ${item.admission}`);
            else console.error(`${item.id}: ${item.error?.message ?? 'refused'}`);
          }
          console.log(`${r.moved} device${r.moved === 1 ? '' : 's'} ${decision}ed`);
        }
        // One device that could not move fails the command (the others moved): scripts see it.
        if (r.results.some((item) => !item.ok)) process.exitCode = 1;
      });
  }
}
