/**
 * Audit entries exported by webhook, on each store backend: the app in-process, a real HTTP receiver on
 * 127.0.0.1 and the real dispatcher. Only a webhook naming `audit`, made by someone holding `audit.read`,
 * receives them; nobody without `audit.read` reads them from the event log.
 */
import { expect, it } from 'vitest';
import { WebhookDispatcher } from '../src/events/webhook-dispatcher.js';
import type { AuditEntryJson } from '../src/protocol/audit.js';
import { type TestApp, testApp } from './support/app.js';
import { type Receiver, startReceiver } from './support/receiver.js';
import { forEachBackend } from './support/stores.js';

interface EventBody {
  type: string;
  data: Record<string, unknown>;
}

forEachBackend((backend) => {
  it('exports each audit entry to a webhook naming audit, and to no catch-all, only while one subscribes', async () => {
    const t: TestApp = await testApp(undefined, { store: await backend.open(), webhookAllowPrivate: true });
    const receivers: Receiver[] = [];
    const dispatcher = new WebhookDispatcher(t.store, t.clock, { random: () => 0, allowPrivate: true });
    try {
      const call = async (auth: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) => {
        const r = await t.app.inject({
          method,
          url,
          headers: { authorization: `Bearer ${auth}` },
          ...(payload ? { payload } : {}),
        });
        return { status: r.statusCode, body: r.json() as Record<string, unknown> };
      };
      const admin = t.adminToken;
      const auditTypes = async () =>
        (await t.store.listEvents({ limit: 1000 })).filter((e) => e.type.startsWith('audit')).length;

      // Nobody subscribes yet: changes are audited, but no event is written for them.
      expect((await call(admin, 'POST', '/api/v1/enrollment-tokens', {})).status).toBe(201);
      expect(await t.store.audit.list({ limit: 10 })).toHaveLength(1);
      expect(await auditTypes()).toBe(0);

      // A role that may manage webhooks but not read the audit log may not subscribe to it, however it asks.
      expect(
        (await call(admin, 'POST', '/api/v1/roles', { name: 'hooks', permissions: ['webhooks.write'] }))
          .status,
      ).toBe(201);
      const hooks = (await call(admin, 'POST', '/api/v1/tokens', { name: 'hooks', role: 'hooks' })).body
        .token as string;
      for (const types of [['audit'], ['audit.'], ['rollout.', 'audit.entry']]) {
        const refused = await call(hooks, 'POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/x', types });
        expect(refused.status).toBe(403);
        expect(refused.body).toMatchObject({ error: { code: 'FORBIDDEN' } });
        expect(JSON.stringify(refused.body)).toContain('audit.read');
      }
      expect((await t.store.webhooks.list()).length).toBe(0);

      const all = await startReceiver();
      const prefixA = await startReceiver();
      const audit = await startReceiver();
      receivers.push(all, prefixA, audit);
      // A catch-all and a prefix that happens to match (`a`) do not name audit: neither receives entries.
      expect((await call(hooks, 'POST', '/api/v1/webhooks', { url: all.url })).status).toBe(201);
      const a = await call(hooks, 'POST', '/api/v1/webhooks', { url: prefixA.url, types: ['a'] });
      expect(a.status).toBe(201);
      expect(await auditTypes()).toBe(0);
      const subscribed = await call(admin, 'POST', '/api/v1/webhooks', { url: audit.url, types: ['audit'] });
      expect(subscribed.status).toBe(201);
      expect((await call(admin, 'POST', '/api/v1/enrollment-tokens', {})).status).toBe(201);
      await dispatcher.deliverDue();

      const eventsOf = (r: Receiver) =>
        r.requests.flatMap((q) => (JSON.parse(q.body) as { events: EventBody[] }).events);
      const delivered = eventsOf(audit);
      expect(delivered.map((e) => e.type)).toEqual(['audit.entry', 'audit.entry']);
      expect(delivered.map((e) => e.data.action)).toEqual([
        'POST /api/v1/webhooks',
        'POST /api/v1/enrollment-tokens',
      ]);
      // Each is the entry as the audit API shows it, chain hashes included.
      const entries = (await call(admin, 'GET', '/api/v1/audit')).body.entries as AuditEntryJson[];
      const bySeq = new Map(entries.map((e) => [e.seq, e]));
      for (const e of delivered) expect(e.data).toEqual(bySeq.get(e.data.seq as number));
      expect(eventsOf(all).map((e) => e.type)).toContain('webhook.created');
      expect(eventsOf(all).some((e) => e.type.startsWith('audit'))).toBe(false);
      expect(eventsOf(prefixA)).toEqual([]);

      // The event log shows the entries to audit.read holders only: a viewer's listings, recent or not, skip them.
      const viewer = (await call(admin, 'POST', '/api/v1/tokens', { name: 'look', role: 'viewer' })).body
        .token as string;
      const types = async (auth: string, url: string) =>
        ((await call(auth, 'GET', url)).body.events as EventBody[]).map((e) => e.type);
      for (const url of ['/api/v1/events?limit=1000', '/api/v1/events/recent?limit=1000']) {
        expect(await types(admin, url)).toContain('audit.entry');
        expect(await types(viewer, url)).not.toContain('audit.entry');
        expect(await types(viewer, url)).toContain('webhook.created');
      }
      expect(await types(viewer, '/api/v1/events?type=audit')).toEqual([]);

      // Once no webhook subscribes, entries are no longer written as events.
      const before = await auditTypes();
      expect((await call(admin, 'DELETE', `/api/v1/webhooks/${subscribed.body.id}`)).status).toBe(200);
      const afterDelete = await auditTypes();
      expect((await call(admin, 'POST', '/api/v1/enrollment-tokens', {})).status).toBe(201);
      expect(await auditTypes()).toBe(afterDelete);
      expect(afterDelete).toBe(before);
    } finally {
      await dispatcher.stop();
      await Promise.all(receivers.map((r) => r.close()));
      await t.close();
    }
  });
});
