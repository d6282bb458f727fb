/**
 * The audit log (docs/audit.md): newest entries first with filters, the chain's verification, and the whole log
 * as JSON lines (streamed page by page, so an export of millions of entries holds one page in memory).
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { MAX_DURATION_TEXT, parseDuration } from '../../core/duration.js';
import { FleetError } from '../../core/errors.js';
import { AuditEntryJson, AuditVerdictJson, auditEntryJson, auditVerdictJson } from '../../protocol/audit.js';
import { EventCursor, withErrors } from '../../protocol/common.js';
import type { ServerContext } from '../context.js';

const ListQuery = Type.Object(
  {
    actor: Type.Optional(Type.String({ maxLength: 256 })),
    since: Type.Optional(
      Type.String({
        maxLength: MAX_DURATION_TEXT,
        description: 'Entries at or after this ISO-8601 time, or this long ago (e.g. 1h, 7d)',
      }),
    ),
    before: Type.Optional(EventCursor('Entries with a smaller seq (paging back)', 1)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);

/** `since` as an instant: an ISO-8601 time, or a duration before now. */
function sinceOf(text: string, now: number): number {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = Date.parse(text);
    if (Number.isNaN(at))
      throw new FleetError('VALIDATION', `querystring.since: "${text}" is not a valid time`);
    return at;
  }
  return now - parseDuration(text, 'querystring.since');
}

const EXPORT_PAGE = 1_000;

export const auditRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/audit',
      {
        config: { permission: 'audit.read' },
        schema: {
          summary: 'Audit log entries, newest first',
          tags: ['audit'],
          querystring: ListQuery,
          response: withErrors({
            200: Type.Object({
              entries: Type.Array(AuditEntryJson),
              next_before: Type.Union([Type.Integer(), Type.Null()]),
            }),
          }),
        },
      },
      async (request) => {
        const q = request.query;
        const limit = q.limit ?? 100;
        const entries = await c.store.audit.list({
          limit,
          newestFirst: true,
          ...(q.actor !== undefined ? { actor: q.actor } : {}),
          ...(q.since !== undefined ? { since: sinceOf(q.since, c.clock.now()) } : {}),
          ...(q.before !== undefined ? { upToSeq: q.before - 1 } : {}),
        });
        return {
          entries: entries.map(auditEntryJson),
          next_before: entries.length === limit ? entries.at(-1)!.seq : null,
        };
      },
    );

    app.get(
      '/audit/verify',
      {
        config: { permission: 'audit.read' },
        schema: {
          summary:
            'Check the hash chain from its anchor to its head; names the first entry that does not hold',
          tags: ['audit'],
          response: withErrors({ 200: AuditVerdictJson }),
        },
      },
      async () => auditVerdictJson(await c.store.audit.verify()),
    );

    app.get(
      '/audit/export',
      {
        config: { permission: 'audit.read' },
        schema: {
          summary: 'The whole audit log, oldest first, as JSON lines (application/x-ndjson)',
          tags: ['audit'],
          produces: ['application/x-ndjson'],
        },
      },
      async (_request, reply) => {
        const { head } = await c.store.audit.head();
        async function* lines() {
          let after = 0;
          for (;;) {
            const page = await c.store.audit.list({ afterSeq: after, upToSeq: head.seq, limit: EXPORT_PAGE });
            if (page.length === 0) return;
            yield page.map((e) => `${JSON.stringify(auditEntryJson(e))}\n`).join('');
            after = page.at(-1)!.seq;
          }
        }
        return reply.type('application/x-ndjson').send(Readable.from(lines()));
      },
    );
  };
