/** The operator API's webhooks: their JSON as the API, the CLI and the dashboard read it. */
import { type Static, Type } from 'typebox';

export const WebhookJson = Type.Object({
  id: Type.String(),
  url: Type.String({
    description: 'Where events are POSTed, without credentials and with query values shown as "redacted"',
  }),
  types: Type.Array(Type.String(), { description: 'Event type prefixes; empty: every event' }),
  rollout: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
  cursor: Type.Integer({ description: 'The last event id delivered (or passed over by the filter)' }),
  failures: Type.Integer({ description: 'Failed attempts since the last success' }),
  last_error: Type.Union([Type.String(), Type.Null()]),
  next_attempt_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'When the next attempt is due after a failure; null when not waiting',
  }),
  last_delivered_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const WebhookStatusJson = Type.Object({
  ...WebhookJson.properties,
  lag: Type.Integer({ description: 'Events in the log after the cursor (not all may match the filter)' }),
});

export const WebhookCreatedJson = Type.Object({
  ...WebhookJson.properties,
  secret: Type.String({ description: 'The HMAC key of x-fleetd-signature; shown only now' }),
});
export type WebhookJson = Static<typeof WebhookJson>;
export type WebhookStatusJson = Static<typeof WebhookStatusJson>;
export type WebhookCreatedJson = Static<typeof WebhookCreatedJson>;
