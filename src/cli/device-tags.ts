/** `fleetd devices tag ID k=v … k-` and `--filter EXPR`: set and remove tags (docs/filters.md, "Editing tags"). */
import type { Command } from 'commander';
import { FleetError } from '../core/errors.js';
import { parseTagWords } from '../core/tag-edit.js';
import type { TagEditReplyJson } from '../protocol/tags.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

const showTags = (tags: Record<string, string> | undefined) =>
  Object.entries(tags ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(' ') || '(no tags)';

export function registerDeviceTags(devices: Command, ctx: Ctx): void {
  devices
    .command('tag')
    .argument('<words...>', 'a device id (unless --filter), then key=value to set a tag, key- to remove one')
    .description('set and remove tags on one device, or on every device a filter selects')
    .option(
      '-f, --filter <expr>',
      "the devices a filter selects, e.g. 'tag.region = west and status = online'",
    )
    .action(async (words: string[], opts: { filter?: string }) => {
      const id = opts.filter === undefined ? words[0] : undefined;
      const rest = opts.filter === undefined ? words.slice(1) : words;
      if (rest.length === 0) throw new CliError('devices tag: name tags to set (key=value) or remove (key-)');
      let edit: ReturnType<typeof parseTagWords>;
      try {
        edit = parseTagWords(rest);
      } catch (error) {
        if (error instanceof FleetError) throw new CliError(error.message);
        throw error;
      }
      const selection = opts.filter === undefined ? { ids: [id!] } : { filter: opts.filter };
      const r = await ctx
        .client()
        .request<TagEditReplyJson>('POST', '/api/v1/devices/tags', { ...selection, ...edit });
      if (ctx.format() === 'json') printJson(r);
      else {
        for (const item of r.results) {
          if (item.ok) console.log(`${item.id}: ${showTags(item.tags)}${item.changed ? '' : ' (unchanged)'}`);
          else console.error(`${item.id}: ${item.error?.message ?? 'refused'}`);
        }
        console.log(`${r.changed} device${r.changed === 1 ? '' : 's'} changed`);
      }
      // One device left as it was fails the command (the others changed): scripts see it.
      if (r.results.some((item) => !item.ok)) process.exitCode = 1;
    });
}
