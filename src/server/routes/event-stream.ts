/**
 * Server-sent events: the event log as it grows, for dashboards and `watch` commands. Every replica reads the
 * same store, so the stream polls it after the client's cursor (Last-Event-ID resumes after a reconnect).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ServerContext } from '../context.js';
import { eventJson } from '../json.js';

const StreamQuery = Type.Object(
  {
    after: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Start after this event id (default: from now on)' }),
    ),
    device: Type.Optional(Type.String({ maxLength: 128 })),
    rollout: Type.Optional(Type.String({ maxLength: 128 })),
    type: Type.Optional(Type.String({ maxLength: 64, description: 'Event type prefix, e.g. update.' })),
    access_token: Type.Optional(
      Type.String({
        maxLength: 256,
        description: 'The API token, for clients that cannot set headers (EventSource)',
      }),
    ),
  },
  { additionalProperties: false },
);

const POLL_MS = 500;
const KEEPALIVE_MS = 15_000;

export const eventStreamRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    // Streams never end on their own: close them when the server closes, or it would wait for clients.
    const streams = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const stop of streams) stop();
    });

    app.get(
      '/events/stream',
      {
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
          Number.isInteger(lastEventId) && lastEventId >= 0
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
        try {
          while (open) {
            const events = await c.store.listEvents({
              after: cursor,
              limit: 500,
              ...(q.device !== undefined ? { deviceId: q.device } : {}),
              ...(q.rollout !== undefined ? { rolloutId: q.rollout } : {}),
              ...(q.type !== undefined ? { typePrefix: q.type } : {}),
            });
            for (const e of events) {
              out.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(eventJson(e))}\n\n`);
              cursor = e.id;
              lastWrite = Date.now();
            }
            if (Date.now() - lastWrite > KEEPALIVE_MS) {
              out.write(': keep-alive\n\n');
              lastWrite = Date.now();
            }
            if (events.length < 500) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
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
