/** The webhook API over HTTP (in-process inject) with a real dispatcher and a real receiver. */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { WebhookDispatcher } from '../src/events/webhook-dispatcher.js';
import { signatureMatches } from '../src/events/webhook-rules.js';
import { type TestApp, testApp } from './support/app.js';
import { type Receiver, startReceiver } from './support/receiver.js';

let t: TestApp;
let r: Receiver;
let dispatcher: WebhookDispatcher;
beforeEach(async () => {
  // The receiver listens on loopback, which only a server started with --webhook-allow-private may reach.
  t = await testApp(undefined, { webhookAllowPrivate: true });
  r = await startReceiver();
  dispatcher = new WebhookDispatcher(t.store, t.clock, { random: () => 0, allowPrivate: true });
});
afterEach(async () => {
  await dispatcher.stop();
  await r.close();
  await t.close();
});

function api(method: 'GET' | 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>) {
  return t.app.inject({
    method,
    url: `/api/v1${url}`,
    headers: t.admin,
    ...(payload === undefined ? {} : { payload }),
  });
}

it('registers a webhook, shows the secret once, and lists and shows it without', async () => {
  const created = await api('POST', '/webhooks', { url: r.url, types: ['update.failed', 'rollout.'] });
  expect(created.statusCode, created.body).toBe(201);
  const body = created.json();
  expect(body).toMatchObject({
    url: r.url,
    types: ['update.failed', 'rollout.'],
    rollout: null,
    failures: 0,
    last_error: null,
    next_attempt_at: null,
  });
  expect(body.id).toMatch(/^wh_/);
  expect(body.secret).toMatch(/^whsec_[\w-]{40,}$/);
  const list = await api('GET', '/webhooks');
  const { secret: _secret, ...listed } = body;
  expect(list.json().webhooks).toEqual([listed]);
  const shown = await api('GET', `/webhooks/${body.id}`);
  expect(shown.json()).toMatchObject({ id: body.id, cursor: body.cursor, lag: 0 });
  expect(shown.body).not.toContain(body.secret);
  const given = await api('POST', '/webhooks', {
    url: r.url,
    secret: 'my-own-secret-0123456789',
    rollout: 'ro_1',
  });
  expect(given.json()).toMatchObject({ secret: 'my-own-secret-0123456789', rollout: 'ro_1' });
  const audit = await api('GET', '/events?type=webhook.');
  expect(audit.json().events.map((e: { type: string; actor: string }) => [e.type, e.actor])).toEqual([
    ['webhook.created', 'api:admin'],
    ['webhook.created', 'api:admin'],
  ]);
  expect(audit.body).not.toContain(body.secret);
});

it('refuses bad input with a clear 400 naming the field', async () => {
  for (const [payload, message] of [
    [
      { url: 'ftp://example.com/x' },
      /^url: "ftp:\/\/example.com\/x" must be an http:\/\/ or https:\/\/ URL$/,
    ],
    [{ url: 'not a url' }, /^url: "not a url" is not a URL$/],
    [{}, /missing field "url"/],
    [{ url: r.url, types: ['has space'] }, /body\.types\.0/],
    [{ url: r.url, secret: 'short' }, /body\.secret/],
    [{ url: r.url, extra: 1 }, /unknown field "extra"/],
  ] as const) {
    const reply = await api('POST', '/webhooks', payload);
    expect(reply.statusCode, JSON.stringify(payload)).toBe(400);
    expect(reply.json().error.code).toBe('VALIDATION');
    expect(reply.json().error.message).toMatch(message);
  }
  expect((await api('GET', '/webhooks')).json().webhooks).toEqual([]);
});

it('sends a test event to that webhook only, signed with its secret', async () => {
  const other = await startReceiver();
  try {
    const hook = (await api('POST', '/webhooks', { url: r.url, types: ['rollout.'] })).json();
    await api('POST', '/webhooks', { url: other.url });
    const sent = await api('POST', `/webhooks/${hook.id}/test`);
    expect(sent.statusCode).toBe(202);
    await dispatcher.deliverDue();
    expect(r.requests).toHaveLength(1);
    const request = r.requests[0]!;
    expect(signatureMatches(hook.secret, request.body, String(request.headers['x-fleetd-signature']))).toBe(
      true,
    );
    expect(JSON.parse(request.body).events).toMatchObject([
      { id: sent.json().event_id, type: 'webhook.test', actor: 'api:admin', data: { webhook_id: hook.id } },
    ]);
    expect(other.requests.flatMap((q) => q.types)).not.toContain('webhook.test');
    expect((await api('GET', `/webhooks/${hook.id}`)).json()).toMatchObject({
      cursor: sent.json().event_id,
      lag: 0,
      last_delivered_at: new Date(t.clock.now()).toISOString(),
    });
    expect((await api('POST', '/webhooks/wh_nope/test')).statusCode).toBe(404);
  } finally {
    await other.close();
  }
});

it('shows the delivery status of a failing webhook, then deletes it', async () => {
  r.answers = [503];
  const hook = (await api('POST', '/webhooks', { url: r.url })).json();
  await api('POST', `/webhooks/${hook.id}/test`);
  await dispatcher.deliverDue();
  const status = (await api('GET', `/webhooks/${hook.id}`)).json();
  expect(status).toMatchObject({
    cursor: hook.cursor,
    lag: 1,
    failures: 1,
    last_error: 'HTTP 503 Service Unavailable',
    next_attempt_at: new Date(t.clock.now() + 5_000).toISOString(),
    last_delivered_at: null,
  });
  const deleted = await api('DELETE', `/webhooks/${hook.id}`);
  expect(deleted.json()).toEqual({ deleted: hook.id });
  expect((await api('GET', `/webhooks/${hook.id}`)).statusCode).toBe(404);
  expect((await api('DELETE', `/webhooks/${hook.id}`)).json().error.code).toBe('NOT_FOUND');
  const audit = (await api('GET', '/events?type=webhook.deleted')).json().events;
  expect(audit).toMatchObject([{ actor: 'api:admin', data: { id: hook.id } }]);
  // Nothing more is sent to a deleted webhook.
  t.clock.advance(60_000);
  expect(await dispatcher.deliverDue()).toEqual([]);
});

it('needs an API token', async () => {
  const reply = await t.app.inject({ method: 'GET', url: '/api/v1/webhooks' });
  expect(reply.statusCode).toBe(401);
});
