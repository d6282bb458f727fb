/** Operator API for webhooks: register, list, show with delivery status, delete, send a test event. */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { subscribesToAudit } from '../../core/audit/audit-export.js';
import { FleetError } from '../../core/errors.js';
import { shownUrl } from '../../core/shown-url.js';
import { checkWebhookTarget } from '../../events/webhook-egress.js';
import { validateWebhookUrl } from '../../events/webhook-rules.js';
import { withErrors } from '../../protocol/common.js';
import { WebhookCreatedJson, WebhookJson, WebhookStatusJson } from '../../protocol/webhooks.js';
import { newId } from '../../registry/credentials.js';
import type { Webhook } from '../../store/store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import type { ServerContext } from '../context.js';
import { principalOf } from '../principal.js';
import { refuseScoped } from '../scope.js';

const iso = (ms: number | null) => (ms === null || ms === 0 ? null : new Date(ms).toISOString());

const CreateBody = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      description:
        'http:// or https:// URL events are POSTed to, without user:password@; a public address unless the server runs with --webhook-allow-private',
    }),
    types: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' }), {
        maxItems: 32,
        description:
          'Event type prefixes, e.g. "rollout." or "update.failed"; none: every event but audit entries, which need "audit" named (and audit.read)',
      }),
    ),
    rollout: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: "Only this rollout's events" }),
    ),
    secret: Type.Optional(
      Type.String({
        minLength: 16,
        maxLength: 256,
        description: 'HMAC key; generated (and returned once) if absent',
      }),
    ),
  },
  { additionalProperties: false },
);

const WebhookParams = Type.Object({ id: Type.String({ maxLength: 128 }) });

function webhookJson(w: Webhook) {
  return {
    id: w.id,
    url: shownUrl(w.url),
    types: w.types,
    rollout: w.rolloutId,
    created_at: new Date(w.createdAt).toISOString(),
    cursor: w.cursor,
    failures: w.failures,
    last_error: w.lastError,
    next_attempt_at: w.failures === 0 ? null : iso(w.nextAttemptAt),
    last_delivered_at: iso(w.lastDeliveredAt),
  };
}

/** A webhook as its audit entry shows it: where events go and which, never its secret or a URL's password. */
const webhookShown = (w: Webhook) => ({ url: shownUrl(w.url), types: w.types, rollout: w.rolloutId });

export const webhookRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const find = async (id: string) => {
      const webhook = await c.store.webhooks.get(id);
      if (!webhook) throw new FleetError('NOT_FOUND', `webhook ${id} does not exist`);
      return webhook;
    };

    app.post(
      '/webhooks',
      {
        config: { permission: 'webhooks.write' },
        schema: {
          summary: 'Register a webhook: stored events from now on are POSTed to it, signed, at least once',
          tags: ['webhooks'],
          body: CreateBody,
          response: withErrors({ 201: WebhookCreatedJson }),
        },
      },
      async (request, reply) => {
        // A webhook is sent every event, of every device: not for a principal that sees only some.
        refuseScoped(request, 'a webhook');
        const body = request.body;
        // The audit log goes out only to a receiver chosen by someone who may read it.
        if (subscribesToAudit(body.types ?? []) && !principalOf(request).permissions.has('audit.read')) {
          throw new FleetError(
            'FORBIDDEN',
            `types: a webhook receiving audit entries needs the permission audit.read, which role ${principalOf(request).role} does not grant`,
            { permission: 'audit.read' },
          );
        }
        const url = validateWebhookUrl(body.url, 'url');
        if (!c.webhookAllowPrivate) checkWebhookTarget(new URL(url), 'url');
        const secret = body.secret ?? `whsec_${randomBytes(32).toString('base64url')}`;
        const webhook = await c.store.webhooks.create(
          {
            id: newId('wh'),
            url,
            secret,
            types: [...new Set(body.types ?? [])],
            rolloutId: body.rollout ?? null,
            createdAt: c.clock.now(),
          },
          actorOf(operatorOf(request)),
        );
        auditChange(request, null, webhookShown(webhook));
        return reply.status(201).send({ ...webhookJson(webhook), secret });
      },
    );

    app.get(
      '/webhooks',
      {
        config: { permission: 'webhooks.read' },
        schema: {
          summary: 'Webhooks and their delivery state (secrets are never shown again)',
          tags: ['webhooks'],
          response: withErrors({ 200: Type.Object({ webhooks: Type.Array(WebhookJson) }) }),
        },
      },
      async () => ({ webhooks: (await c.store.webhooks.list()).map(webhookJson) }),
    );

    app.get(
      '/webhooks/:id',
      {
        config: { permission: 'webhooks.read' },
        schema: {
          summary: 'One webhook with its delivery status: cursor, lag, failures, last error, next attempt',
          tags: ['webhooks'],
          params: WebhookParams,
          response: withErrors({ 200: WebhookStatusJson }),
        },
      },
      async (request) => {
        const webhook = await find(request.params.id);
        return { ...webhookJson(webhook), lag: await c.store.webhooks.lag(webhook.id) };
      },
    );

    app.delete(
      '/webhooks/:id',
      {
        config: { permission: 'webhooks.write' },
        schema: {
          summary: 'Delete a webhook (nothing more is delivered to it)',
          tags: ['webhooks'],
          params: WebhookParams,
          response: withErrors({ 200: Type.Object({ deleted: Type.String() }) }),
        },
      },
      async (request) => {
        const before = await c.store.webhooks.get(request.params.id);
        await c.store.webhooks.delete(request.params.id, c.clock.now(), actorOf(operatorOf(request)));
        auditChange(request, before && webhookShown(before), null);
        return { deleted: request.params.id };
      },
    );

    app.post(
      '/webhooks/:id/test',
      {
        config: { permission: 'webhooks.write' },
        schema: {
          summary: 'Append a webhook.test event delivered to this webhook only (whatever its filter)',
          tags: ['webhooks'],
          params: WebhookParams,
          response: withErrors({
            202: Type.Object({
              event_id: Type.Integer({ description: 'Delivered once the webhook cursor reaches it' }),
            }),
          }),
        },
      },
      async (request, reply) => {
        const event = await c.store.webhooks.sendTest(
          request.params.id,
          c.clock.now(),
          actorOf(operatorOf(request)),
        );
        return reply.status(202).send({ event_id: event.id });
      },
    );
  };
