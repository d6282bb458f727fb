/**
 * Webhook egress and secrets: URLs with credentials are refused, loopback, private, link-local and metadata
 * targets are refused unless the server allows them (at registration for literal addresses, after DNS at
 * delivery), a refused target's last error tells nothing about its ports, and no listing or event shows a
 * URL's credentials or query values.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebhookDispatcher } from '../src/events/webhook-dispatcher.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { type TestApp, testApp } from './support/app.js';
import { freePort } from './support/processes.js';
import { type Receiver, startReceiver } from './support/receiver.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');

describe('registration and delivery on a server that allows public receivers only (the default)', () => {
  let t: TestApp;
  let r: Receiver;
  let dispatcher: WebhookDispatcher;
  beforeEach(async () => {
    t = await testApp(NOW);
    r = await startReceiver();
    dispatcher = new WebhookDispatcher(t.store, t.clock, { random: () => 0 });
  });
  afterEach(async () => {
    await dispatcher.stop();
    await r.close();
    await t.close();
  });

  const api = (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
    t.app.inject({ method, url: `/api/v1${url}`, headers: t.admin, ...(payload ? { payload } : {}) });

  /** Stored as an older server (or --webhook-allow-private) would have: delivery must refuse it on its own. */
  const stored = (id: string, url: string) =>
    t.store.webhooks.create(
      { id, url, secret: 'secret-0123456789abcdef', types: [], rolloutId: null, createdAt: t.clock.now() },
      'test',
    );

  it('refuses a URL with user:password@ with a 400 that does not echo the password', async () => {
    const reply = await api('POST', '/webhooks', { url: 'https://ops:hunter2-pw@hooks.example.com/fleetd' });
    expect(reply.statusCode).toBe(400);
    expect(reply.json().error).toMatchObject({ code: 'VALIDATION' });
    expect(reply.json().error.message).toMatch(/^url: the URL must not carry credentials \(user:password@\)/);
    expect(reply.body).not.toContain('hunter2-pw');
    expect((await api('GET', '/webhooks')).json().webhooks).toEqual([]);
  });

  it('refuses loopback, private, link-local, CGNAT, unique-local and metadata addresses at registration', async () => {
    for (const url of [
      r.url,
      'http://10.0.0.5:8080/x',
      'http://172.16.3.4/x',
      'http://192.168.1.10/x',
      'http://100.64.0.1/x',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]:5432/',
      'http://[fd00:ec2::254]/',
      'http://[fe80::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://2130706433:8080/',
      'http://localhost:5432/',
    ]) {
      const reply = await api('POST', '/webhooks', { url });
      expect(reply.statusCode, url).toBe(400);
      expect(reply.json().error.code).toBe('VALIDATION');
      expect(reply.json().error.message).toMatch(/public addresses only.*--webhook-allow-private/);
    }
    expect((await api('GET', '/webhooks')).json().webhooks).toEqual([]);
    // Public ones are taken: a literal address, and a name (checked again after DNS at each delivery).
    expect((await api('POST', '/webhooks', { url: 'http://93.184.215.14/x' })).statusCode).toBe(201);
    expect((await api('POST', '/webhooks', { url: 'https://hooks.example.com/x' })).statusCode).toBe(201);
  });

  it('refuses to deliver to a private target, by address or by a name resolving to one, alike whatever the port', async () => {
    const closed = await freePort();
    await stored('wh_open', r.url);
    await stored('wh_closed', `http://127.0.0.1:${closed}/hook`);
    await stored('wh_name', `http://localhost:${r.port}/hook`);
    await stored('wh_mapped', `http://[::ffff:127.0.0.1]:${r.port}/hook`);
    for (const id of ['wh_open', 'wh_closed', 'wh_name', 'wh_mapped']) {
      await t.store.webhooks.sendTest(id, t.clock.now(), 'test');
    }
    const outcomes = await dispatcher.deliverDue();
    expect(outcomes).toHaveLength(4);
    expect(r.requests).toEqual([]);
    const errors = new Map(outcomes.map((o) => [o.webhookId, o.error]));
    // An open port and a closed one answer the same: the last error is no port probe.
    expect(errors.get('wh_open')).toBe(
      'address not allowed: 127.0.0.1 is not a public address (start the server with --webhook-allow-private to allow private receivers)',
    );
    expect(errors.get('wh_closed')).toBe(errors.get('wh_open'));
    expect(errors.get('wh_name')).toMatch(/^address not allowed: localhost resolves to no public address/);
    expect(errors.get('wh_mapped')).toMatch(/^address not allowed: ::ffff:7f00:1 is not a public address/);
    const shown: Array<{ id: string; last_error: string }> = (await api('GET', '/webhooks')).json().webhooks;
    expect(new Map(shown.map((w) => [w.id, w.last_error]))).toEqual(errors);
  });

  it('never sends to a stored URL with credentials, nor shows them', async () => {
    const allowing = new WebhookDispatcher(t.store, t.clock, { random: () => 0, allowPrivate: true });
    try {
      await stored('wh_creds', `http://ops:hunter2-pw@127.0.0.1:${r.port}/hook`);
      await t.store.webhooks.sendTest('wh_creds', t.clock.now(), 'test');
      expect(await allowing.deliverDue()).toMatchObject([
        { webhookId: 'wh_creds', error: expect.stringMatching(/^the URL carries credentials/) },
      ]);
      expect(r.requests).toEqual([]);
      const listed = await api('GET', '/webhooks');
      expect(listed.json().webhooks).toMatchObject([{ url: `http://127.0.0.1:${r.port}/hook` }]);
      expect(listed.body).not.toContain('hunter2-pw');
      expect((await api('GET', '/events?type=webhook.')).body).not.toContain('hunter2-pw');
    } finally {
      await allowing.stop();
    }
  });

  it('shows query values as redacted in the creation answer, listings and events', async () => {
    const created = await api('POST', '/webhooks', {
      url: 'https://hooks.example.com/in?token=tok-s3cret&v=2',
    });
    expect(created.statusCode).toBe(201);
    expect(created.json().url).toBe('https://hooks.example.com/in?token=redacted&v=redacted');
    for (const path of ['/webhooks', `/webhooks/${created.json().id}`, '/events?type=webhook.']) {
      const reply = await api('GET', path);
      expect(reply.statusCode).toBe(200);
      expect(reply.body, path).not.toContain('tok-s3cret');
    }
  });
});

describe('a server started with --webhook-allow-private', () => {
  it('registers and delivers to a receiver on loopback, and does not follow its redirect', async () => {
    const t = await testApp(NOW, { webhookAllowPrivate: true });
    const r = await startReceiver();
    const dispatcher = new WebhookDispatcher(t.store, t.clock, { random: () => 0, allowPrivate: true });
    try {
      const created = await t.app.inject({
        method: 'POST',
        url: '/api/v1/webhooks',
        headers: t.admin,
        payload: { url: r.url },
      });
      expect(created.statusCode).toBe(201);
      r.answers = [302];
      await t.store.webhooks.sendTest(created.json().id, t.clock.now(), 'test');
      expect(await dispatcher.deliverDue()).toMatchObject([
        { delivered: 0, error: 'HTTP 302 Found (redirects are not followed)' },
      ]);
      expect(r.requests).toHaveLength(1);
    } finally {
      await dispatcher.stop();
      await r.close();
      await t.close();
    }
  });
});

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
  });

  it('webhook.created and webhook.deleted events carry the URL without credentials or query values', async () => {
    await store.webhooks.create(
      {
        id: 'wh_q',
        url: 'https://ops:pw-1@hooks.example.com/in?token=tok-s3cret',
        secret: 'secret-0123456789abcdef',
        types: [],
        rolloutId: null,
        createdAt: NOW,
      },
      'test',
    );
    await store.webhooks.delete('wh_q', NOW + 1, 'test');
    const events = await store.listEvents({ after: 0, limit: 10, typePrefix: 'webhook.' });
    expect(events.map((e) => [e.type, e.data.url])).toEqual([
      ['webhook.created', 'https://hooks.example.com/in?token=redacted'],
      ['webhook.deleted', 'https://hooks.example.com/in?token=redacted'],
    ]);
  });
});
