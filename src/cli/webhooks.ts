/** `fleetd webhooks add | ls | show | rm | test` */
import type { Command } from 'commander';
import { parseDuration } from '../core/duration.js';
import type {
  WebhookCreatedJson,
  WebhookJson as WebhookListed,
  WebhookStatusJson,
} from '../protocol/webhooks.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson, table } from './output.js';

interface Ctx {
  client(): Client;
  format(): OutputFormat;
}

/** A webhook as listed, shown with its lag, or created with its secret. */
type WebhookJson = WebhookListed &
  Partial<Pick<WebhookStatusJson, 'lag'> & Pick<WebhookCreatedJson, 'secret'>>;

const path = (id: string) => `/api/v1/webhooks/${encodeURIComponent(id)}`;
const types = (w: WebhookJson) => (w.types.length === 0 ? 'all' : w.types.join(','));

export function registerWebhooks(program: Command, ctx: Ctx): void {
  const webhooks = program
    .command('webhooks')
    .description('POST stored events to URLs, signed, at least once (docs/webhooks.md)');

  webhooks
    .command('add')
    .argument('<url>', 'http:// or https:// URL')
    .description('register a webhook; prints its secret once')
    .option(
      '--type <prefix...>',
      'only events whose type starts with one of these, e.g. rollout. update.failed',
    )
    .option('--rollout <id>', "only this rollout's events")
    .option('--secret <secret>', 'HMAC key for x-fleetd-signature (default: generated)')
    .action(async (url: string, opts: { type?: string[]; rollout?: string; secret?: string }) => {
      const w = await ctx.client().request<WebhookJson>('POST', '/api/v1/webhooks', {
        url,
        ...(opts.type ? { types: opts.type } : {}),
        ...(opts.rollout !== undefined ? { rollout: opts.rollout } : {}),
        ...(opts.secret !== undefined ? { secret: opts.secret } : {}),
      });
      if (ctx.format() === 'json') return printJson(w);
      console.log(
        `webhook ${w.id} → ${w.url} (events: ${types(w)}${w.rollout ? `, rollout ${w.rollout}` : ''})`,
      );
      console.log(`secret (shown once): ${w.secret}`);
    });

  webhooks
    .command('ls')
    .description('webhooks and their delivery state')
    .action(async () => {
      const r = await ctx.client().request<{ webhooks: WebhookJson[] }>('GET', '/api/v1/webhooks');
      if (ctx.format() === 'json') return printJson(r);
      console.log(
        table(
          ['ID', 'URL', 'EVENTS', 'ROLLOUT', 'CURSOR', 'FAILURES', 'LAST ERROR'],
          r.webhooks.map((w) => [w.id, w.url, types(w), w.rollout, w.cursor, w.failures, w.last_error]),
        ),
      );
    });

  webhooks
    .command('show')
    .argument('<id>')
    .description('one webhook with its delivery status')
    .action(async (id: string) => {
      const w = await ctx.client().request<WebhookJson>('GET', path(id));
      if (ctx.format() === 'json') return printJson(w);
      const rows: Array<[string, string | number | null]> = [
        ['id', w.id],
        ['url', w.url],
        ['events', types(w)],
        ['rollout', w.rollout],
        ['created', w.created_at],
        ['cursor', w.cursor],
        ['lag', w.lag === undefined ? null : `${w.lag} events`],
        ['last delivered', w.last_delivered_at],
        ['failures', w.failures],
        ['last error', w.last_error],
        ['next attempt', w.next_attempt_at],
      ];
      for (const [k, v] of rows) console.log(`${k.padEnd(16)}${v ?? '-'}`);
    });

  webhooks
    .command('rm')
    .argument('<id>')
    .description('delete a webhook')
    .action(async (id: string) => {
      const r = await ctx.client().request<{ deleted: string }>('DELETE', path(id));
      if (ctx.format() === 'json') return printJson(r);
      console.log(`deleted ${r.deleted}`);
    });

  webhooks
    .command('test')
    .argument('<id>')
    .description('send a webhook.test event to this webhook and wait for it to be delivered')
    .option('--wait <duration>', 'how long to wait for the delivery (0s: do not wait)', '15s')
    .action(async (id: string, opts: { wait: string }) => {
      const waitMs = parseDuration(opts.wait, '--wait');
      const client = ctx.client();
      const { event_id } = await client.request<{ event_id: number }>('POST', `${path(id)}/test`);
      const deadline = Date.now() + waitMs;
      let w: WebhookJson | undefined;
      while (waitMs > 0) {
        w = await client.request<WebhookJson>('GET', path(id));
        if (w.cursor >= event_id) break;
        if (w.failures > 0) {
          throw new CliError(
            `test event ${event_id} not delivered: ${w.last_error ?? 'failed'} (next attempt ${w.next_attempt_at})`,
          );
        }
        if (Date.now() >= deadline) {
          throw new CliError(
            `test event ${event_id} not delivered after ${opts.wait} (${w.lag ?? '?'} events behind)`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const delivered = w !== undefined && w.cursor >= event_id;
      if (ctx.format() === 'json') return printJson({ event_id, delivered });
      console.log(delivered ? `delivered test event ${event_id}` : `queued test event ${event_id}`);
    });
}
