/**
 * The newest events first, paging back in time: what a dashboard shows before its live stream takes over.
 * GET /events reads forward from a cursor, which cannot answer "the last 100 status changes of this device".
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { EventCursor, withErrors } from '../../protocol/common.js';
import { EventJson, eventJson } from '../../protocol/operator-api.js';
import type { ServerContext } from '../context.js';
import { visibleEvents } from '../scope.js';

const RecentQuery = Type.Object(
  {
    before: Type.Optional(EventCursor('Return events with a smaller id (the cursor going back)', 1)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    device: Type.Optional(Type.String({ maxLength: 128 })),
    rollout: Type.Optional(Type.String({ maxLength: 128 })),
    type: Type.Optional(Type.String({ maxLength: 64, description: 'Event type prefix, e.g. device.' })),
  },
  { additionalProperties: false },
);

export const recentEventRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/events/recent',
      {
        config: { permission: 'events.read' },
        schema: {
          summary: 'Stored events newest first, before a cursor (the smallest id you saw)',
          tags: ['events'],
          querystring: RecentQuery,
          response: withErrors({
            200: Type.Object({
              events: Type.Array(EventJson),
              next_before: Type.Union([Type.Integer(), Type.Null()]),
            }),
          }),
        },
      },
      async (request) => {
        const q = request.query;
        const limit = q.limit ?? 100;
        const events = await c.store.listEvents({
          limit,
          newestFirst: true,
          ...(q.before !== undefined ? { before: q.before } : {}),
          ...(q.device !== undefined ? { deviceId: q.device } : {}),
          ...(q.rollout !== undefined ? { rolloutId: q.rollout } : {}),
          ...(q.type !== undefined ? { typePrefix: q.type } : {}),
        });
        return {
          events: (await visibleEvents(c, request, events)).map(eventJson),
          next_before: events.length === limit ? events.at(-1)!.id : null,
        };
      },
    );
  };
