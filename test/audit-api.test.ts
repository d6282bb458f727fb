/**
 * The audit log through the operator API on each store backend: changes audited from one hook, the chain
 * verified and exported, failed authentication recorded in bounded amounts, and the abuse limits' 429s.
 */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { AuditEntryJson } from '../src/protocol/audit.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { type TestApp, testApp } from './support/app.js';
import { forEachBackend } from './support/stores.js';

async function appOn(store: SqlStore, options: Parameters<typeof testApp>[1] = {}): Promise<TestApp> {
  const t = await testApp(undefined, { store, ...options });
  return t;
}

async function auditList(t: TestApp, query = ''): Promise<AuditEntryJson[]> {
  const r = await t.app.inject({ method: 'GET', url: `/api/v1/audit${query}`, headers: t.admin });
  expect(r.statusCode).toBe(200);
  return (r.json() as { entries: AuditEntryJson[] }).entries;
}

forEachBackend((backend) => {
  describe('the audit log over the API', () => {
    it('records each change with who, what, the target and the request id, and never a secret', async () => {
      const t = await appOn(await backend.open());
      try {
        const created = await t.app.inject({
          method: 'POST',
          url: '/api/v1/webhooks',
          headers: t.admin,
          payload: { url: 'https://hooks.example.com/fleet', secret: 'a-webhook-secret-of-enough-length' },
        });
        expect(created.statusCode).toBe(201);
        const hook = created.json() as { id: string };
        const token = await t.app.inject({
          method: 'POST',
          url: '/api/v1/enrollment-tokens',
          headers: t.admin,
          payload: {},
        });
        expect(token.statusCode).toBeLessThan(300);
        const enrollmentToken = (token.json() as { token: string }).token;
        const removed = await t.app.inject({
          method: 'DELETE',
          url: `/api/v1/webhooks/${hook.id}`,
          headers: t.admin,
        });
        // Reads are not audited.
        await t.app.inject({ method: 'GET', url: '/api/v1/webhooks', headers: t.admin });

        const entries = await auditList(t);
        expect(entries.map((e) => e.action)).toEqual([
          'DELETE /api/v1/webhooks/:id',
          'POST /api/v1/enrollment-tokens',
          'POST /api/v1/webhooks',
        ]);
        expect(entries[0]).toMatchObject({
          seq: 3,
          actor: 'api:admin',
          role: 'admin',
          source: '127.0.0.1',
          target: { id: hook.id },
          outcome: removed.statusCode,
          request_id: removed.headers['request-id'] ?? expect.any(String),
        });
        expect(entries[2]?.target).toEqual({ created: hook.id });
        const everything = JSON.stringify(await t.store.audit.list({ limit: 100 }));
        expect(everything).not.toContain('a-webhook-secret-of-enough-length');
        expect(everything).not.toContain(enrollmentToken);
        expect(everything).not.toContain(t.adminToken);

        expect((await auditList(t, '?actor=api:nobody')).length).toBe(0);
        expect((await auditList(t, '?since=1h&limit=1')).map((e) => e.seq)).toEqual([3]);
        const bad = await t.app.inject({
          method: 'GET',
          url: '/api/v1/audit?since=yesterday',
          headers: t.admin,
        });
        expect(bad.statusCode).toBe(400);
        expect(bad.json()).toMatchObject({ error: { code: 'VALIDATION' } });
      } finally {
        await t.close();
      }
    });

    it('records what a change turned its target from and into: a rollout paused, a user disabled', async () => {
      const t = await appOn(await backend.open());
      try {
        const call = (method: 'POST' | 'PUT', url: string, payload?: object) =>
          t.app.inject({ method, url, headers: t.admin, ...(payload ? { payload } : {}) });
        await call('POST', '/api/v1/devices/import', { devices: [{ id: 'dev-1', hardware_type: 'hw' }] });
        const upload = await t.app.inject({
          method: 'POST',
          url: '/api/v1/artifacts?name=fw&version=2.0.0&type=firmware&hardware=hw',
          headers: { ...t.admin, 'content-type': 'application/octet-stream' },
          payload: Buffer.from('fw 2.0.0'),
        });
        expect(upload.statusCode, upload.body).toBe(201);
        const rollout = await call('POST', '/api/v1/rollouts', {
          name: 'to pause',
          release: 'fw@2.0.0',
          filter: 'id = dev-1',
          strategy: 'immediate',
        });
        expect(rollout.statusCode, rollout.body).toBe(201);
        const paused = await call('POST', `/api/v1/rollouts/${rollout.json().id}/pause`);
        expect(paused.statusCode, paused.body).toBe(200);
        const added = await call('POST', '/api/v1/users', {
          name: 'support-1',
          password: 'a password long enough',
          role: 'viewer',
        });
        expect(added.statusCode, added.body).toBe(201);
        expect((await call('POST', '/api/v1/users/support-1/disable')).statusCode).toBe(200);

        const entries = await auditList(t);
        const entry = (action: string) => entries.find((e) => e.action === action);
        expect(entry('POST /api/v1/rollouts/:id/:command')).toMatchObject({
          before: { state: rollout.json().state },
          after: { state: 'paused' },
        });
        expect(entry('POST /api/v1/users/:name/disable')).toMatchObject({
          before: { disabled_at: null },
          after: { disabled_at: expect.any(String) },
        });
        expect((await t.store.audit.verify()).ok).toBe(true);
      } finally {
        await t.close();
      }
    });

    it('verifies the chain of a real run, exports it as JSON lines, and names an entry edited in the database', async () => {
      const store = await backend.open();
      const t = await appOn(store);
      try {
        for (let i = 0; i < 3; i++) {
          await t.app.inject({
            method: 'POST',
            url: '/api/v1/webhooks',
            headers: t.admin,
            payload: { url: `https://hooks.example.com/${i}` },
          });
        }
        const verify = () => t.app.inject({ method: 'GET', url: '/api/v1/audit/verify', headers: t.admin });
        expect((await verify()).json()).toMatchObject({
          ok: true,
          checked: 3,
          head: { seq: 3 },
          first_bad: null,
        });

        const exported = await t.app.inject({ method: 'GET', url: '/api/v1/audit/export', headers: t.admin });
        expect(exported.headers['content-type']).toMatch(/application\/x-ndjson/);
        const lines = exported.body
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as AuditEntryJson);
        expect(lines.map((l) => l.seq)).toEqual([1, 2, 3]);
        expect(lines[1]?.prev_hash).toBe(lines[0]?.hash);

        await sql`update audit_log set outcome = 200 where seq = 2`.execute(store.db);
        expect((await verify()).json()).toMatchObject({
          ok: false,
          first_bad: { seq: 2, fault: 'hash_mismatch' },
        });
      } finally {
        await t.close();
      }
    });

    it('answers a flood of bad tokens 401 then 429, with a bounded number of entries and log lines', async () => {
      const lines: string[] = [];
      const t = await appOn(await backend.open(), {
        log: { level: 'warn', write: (line) => lines.push(line) },
        abuseLimits: {
          enrollment: { max: 1_000, windowMs: 60_000 },
          deviceApi: { max: 1_000, windowMs: 60_000 },
          authFailures: { max: 20, windowMs: 60_000 },
        },
      });
      try {
        const statuses = new Map<number, number>();
        const flood = 5_000;
        for (let i = 0; i < flood; i++) {
          const r = await t.app.inject({
            method: 'GET',
            url: '/api/v1/devices',
            headers: { authorization: `Bearer fld_admin_wrong${i}` },
          });
          statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
          if (i === 20) {
            expect(r.statusCode).toBe(429);
            expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
            expect(r.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
          }
        }
        expect(Object.fromEntries(statuses)).toEqual({ 401: 20, 429: flood - 20 });
        // The source is refused for the rest of the window, even with a valid token: guessing gains nothing.
        const valid = await t.app.inject({ method: 'GET', url: '/api/v1/devices', headers: t.admin });
        expect(valid.statusCode).toBe(429);
        // Shared with the other replicas through the store (test/rate-limits-shared.test.ts has two).
        await t.app.abuseLimits.sync();
        const shared = await sql<{ key: string; count: number }>`select key, count from rate_counts`.execute(
          (t.store as SqlStore).db,
        );
        expect(shared.rows.map((r) => [r.key, Number(r.count)])).toEqual([['authfail:127.0.0.1', 20]]);

        const failed = await t.store.audit.list({ limit: 10_000 });
        expect(failed.length).toBe(5);
        expect(failed.every((e) => e.action === 'auth.failed' && e.actor === null)).toBe(true);
        expect(JSON.stringify(failed)).not.toContain('fld_admin_wrong');
        const warnings = lines.filter((l) => l.includes('authentication failed'));
        expect(warnings.length).toBe(5);

        // The window closes: one entry and one event count the rest; the source may try again.
        t.clock.advance(61_000);
        await t.app.authFailures.flush();
        const summary = (await t.store.audit.list({ newestFirst: true, limit: 1 }))[0];
        expect(summary?.data).toMatchObject({ count: flood + 1, suppressed: flood + 1 - 5 });
        const events = await t.store.listEvents({ limit: 10, typePrefix: 'auth.failed' });
        expect(events).toHaveLength(1);
        expect(events[0]?.data).toMatchObject({ source: '127.0.0.1', count: flood + 1 });
        expect(lines.filter((l) => l.includes('authentication failed')).length).toBe(6);
        expect(
          (await t.app.inject({ method: 'GET', url: '/api/v1/devices', headers: t.admin })).statusCode,
        ).toBe(200);
        expect((await t.store.audit.verify()).ok).toBe(true);
      } finally {
        await t.close();
      }
    });

    it('limits enrollment per address and the device API per credential, with 429 and Retry-After', async () => {
      const t = await appOn(await backend.open(), {
        abuseLimits: {
          enrollment: { max: 3, windowMs: 60_000 },
          deviceApi: { max: 2, windowMs: 60_000 },
          authFailures: { max: 1_000, windowMs: 60_000 },
        },
      });
      try {
        const enroll = () =>
          t.app.inject({
            method: 'POST',
            url: '/api/device/v1/enroll',
            payload: { device_id: 'dev-1', enrollment_token: 'fld_enroll_not-a-real-one' },
          });
        for (let i = 0; i < 3; i++) expect((await enroll()).statusCode).toBe(401);
        const limited = await enroll();
        expect(limited.statusCode).toBe(429);
        expect(limited.headers['retry-after']).toBe('60');
        expect(limited.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });

        const heartbeat = (credential: string) =>
          t.app.inject({
            method: 'POST',
            url: '/api/device/v1/heartbeat',
            headers: { authorization: `Bearer ${credential}` },
            payload: { device_id: 'dev-1' },
          });
        const one = 'dev-1.fld_device_one';
        expect((await heartbeat(one)).statusCode).toBe(401);
        expect((await heartbeat(one)).statusCode).toBe(401);
        expect((await heartbeat(one)).statusCode).toBe(429);
        // Another credential has its own count.
        expect((await heartbeat('dev-1.fld_device_two')).statusCode).toBe(401);
        t.clock.advance(60_000);
        expect((await heartbeat(one)).statusCode).toBe(401);

        // The device APIs served to SWUpdate (hawkBit DDI) and mender-client count per credential alike.
        const ddiPoll = () =>
          t.app.inject({
            method: 'GET',
            url: '/DEFAULT/controller/v1/dev-1',
            headers: { authorization: 'TargetToken not-a-real-one' },
          });
        expect((await ddiPoll()).statusCode).toBe(401);
        expect((await ddiPoll()).statusCode).toBe(401);
        expect((await ddiPoll()).statusCode).toBe(429);
        const menderCheck = () =>
          t.app.inject({
            method: 'GET',
            url: '/api/devices/v1/deployments/device/deployments/next',
            headers: { authorization: 'Bearer not.a.jwt' },
          });
        expect((await menderCheck()).statusCode).toBe(401);
        expect((await menderCheck()).statusCode).toBe(401);
        expect((await menderCheck()).statusCode).toBe(429);
      } finally {
        await t.close();
      }
    });
  });
});
