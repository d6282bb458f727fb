/**
 * Server-sent events: the event log as it grows, for dashboards and `watch` commands. Every replica reads the
 * same store, so the stream polls it after the client's cursor (Last-Event-ID resumes after a reconnect).
 * On PostgreSQL an event id can become visible after a higher one (its transaction commits later): the stream
 * reads the log in order and stops at such a gap until it fills (see settledEvents), so it never moves its
 * cursor past an event a client would then never see.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { type Gap, settledEvents } from '../../events/webhook-rules.js';
import { EVENT_ID_MAX, EventCursor, withErrors } from '../../protocol/common.js';
import { eventJson } from '../../protocol/operator-api.js';
import { hashSecret } from '../../registry/credentials.js';
import type { StoredEvent } from '../../store/store.js';
import { bearer, operatorOf } from '../auth.js';
import type { ServerContext } from '../context.js';
import { visibleEvents } from '../scope.js';
import type { StreamTickets } from '../stream-tickets.js';

const StreamQuery = Type.Object(
  {
    after: Type.Optional(EventCursor('Start after this event id (default: from now on)')),
    device: Type.Optional(Type.String({ maxLength: 128 })),
    rollout: Type.Optional(Type.String({ maxLength: 128 })),
    type: Type.Optional(Type.String({ maxLength: 64, description: 'Event type prefix, e.g. update.' })),
    ticket: Type.Optional(
      Type.String({
        maxLength: 128,
        description:
          'A stream ticket (POST /events/stream-ticket) for clients that cannot set headers (EventSource): ' +
          'it opens one stream within a minute of being issued',
      }),
    ),
  },
  { additionalProperties: false },
);

const POLL_MS = 500;
const KEEPALIVE_MS = 15_000;
const BATCH = 500;
/**
 * How long a missing id is waited for before it is taken as a transaction that rolled back. Real time, not the
 * server's clock: it measures how long a transaction takes to commit.
 */
const GAP_GRACE_MS = 30_000;

interface StreamFilter {
  device?: string | undefined;
  rollout?: string | undefined;
  type?: string | undefined;
}

/** The stream's filter applied in memory: the log is read whole, in order, to see its gaps. */
function matches(e: StoredEvent, f: StreamFilter): boolean {
  return (
    (f.device === undefined || e.deviceId === f.device) &&
    (f.rollout === undefined || e.rolloutId === f.rollout) &&
    (f.type === undefined || e.type.startsWith(f.type))
  );
}

const StreamTicketJson = Type.Object({
  ticket: Type.String({ description: 'Goes in the stream URL as ?ticket=; opens one stream' }),
  expires_at: Type.String({ format: 'date-time' }),
});

export const eventStreamRoutes =
  (c: ServerContext, tickets: StreamTickets): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/events/stream-ticket',
      {
        config: { permission: 'events.read' },
        schema: {
          summary:
            'A ticket that opens the event stream once within 60 s, for clients that cannot set headers (EventSource)',
          tags: ['events'],
          response: withErrors({ 201: StreamTicketJson }),
        },
      },
      async (request, reply) => {
        operatorOf(request);
        // Issued for the header's token only: a ticket cannot be traded for another ticket.
        const { ticket, expiresAt } = tickets.issue(hashSecret(bearer(request)));
        return reply.status(201).send({ ticket, expires_at: new Date(expiresAt).toISOString() });
      },
    );

    // Streams never end on their own: close them when the server closes, or it would wait for clients.
    const streams = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const stop of streams) stop();
    });

    app.get(
      '/events/stream',
      {
        config: { permission: 'events.read' },
        schema: {
          summary: 'The event log as server-sent events (text/event-stream); resumes after Last-Event-ID',
          tags: ['events'],
          querystring: StreamQuery,
        },
      },
      async (request, reply) => {
        const q = request.query;
        const lastEventId = Number(request.headers['last-event-id']);
        let cursor =
          Number.isInteger(lastEventId) && lastEventId >= 0 && lastEventId <= EVENT_ID_MAX
            ? lastEventId
            : (q.after ?? (await c.store.lastEventId()));
        reply.hijack();
        const out = reply.raw;
        out.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        out.write(': fleetd event stream\n\n');
        let open = true;
        let lastWrite = Date.now();
        const stop = () => {
          open = false;
        };
        streams.add(stop);
        request.raw.on('close', stop);
        const gaps = new Map<number, number>();
        const gapSeen = (g: Gap) => gaps.get(g.from);
        try {
          while (open) {
            const events = await c.store.listEvents({ after: cursor, limit: BATCH });
            const now = Date.now();
            const { settled, gap } = settledEvents(cursor, events, gapSeen, now, GAP_GRACE_MS);
            if (gap && !gaps.has(gap.from)) gaps.set(gap.from, now);
            const visible = new Set(await visibleEvents(c, request, settled));
            for (const e of settled) {
              if (visible.has(e) && matches(e, q)) {
                out.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(eventJson(e))}\n\n`);
                lastWrite = now;
              }
              cursor = e.id;
            }
            for (const from of gaps.keys()) if (from <= cursor) gaps.delete(from);
            if (now - lastWrite > KEEPALIVE_MS) {
              out.write(': keep-alive\n\n');
              lastWrite = now;
            }
            if (events.length < BATCH || gap) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          }
        } catch (error) {
          request.log.error({ err: error }, 'event stream stopped');
        } finally {
          streams.delete(stop);
          out.end();
        }
      },
    );
  };
