/** Operator API: the alerts the alert rules raised (docs/alerts.md), as this server last evaluated them. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AlertListJson } from '../../protocol/alerts.js';
import { withErrors } from '../../protocol/common.js';
import type { ServerContext } from '../context.js';

const seconds = (ms: number) => `${ms / 1_000}s`;

export const alertRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/alerts',
      {
        config: { permission: 'events.read' },
        schema: {
          summary: 'Pending, firing and recovering alerts, and the alert rules in force',
          tags: ['alerts'],
          querystring: Type.Object(
            {
              state: Type.Optional(
                Type.Union([Type.Literal('pending'), Type.Literal('firing'), Type.Literal('recovering')]),
              ),
            },
            { additionalProperties: false },
          ),
          response: withErrors({ 200: AlertListJson }),
        },
      },
      async (request) => {
        const alerts = c.alerts;
        const listed = (alerts?.list() ?? []).filter(
          (a) => request.query.state === undefined || a.phase === request.query.state,
        );
        return {
          alerts: listed.map((a) => ({
            key: a.key,
            rule: a.rule,
            severity: a.severity,
            state: a.phase,
            since: new Date(a.since).toISOString(),
            value: a.value,
            threshold: a.threshold,
            rollout: a.rolloutId,
            summary: a.summary,
          })),
          rules: (alerts?.listRules() ?? []).map((r) => ({
            name: r.name,
            kind: r.kind,
            severity: r.severity,
            for: seconds(r.forMs),
            recover_for: seconds(r.recoverForMs),
            summary: r.summary,
          })),
          evaluated: alerts !== undefined,
        };
      },
    );
  };
