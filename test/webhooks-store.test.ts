/** The webhook part of the Store port, on every backend: registration, cursor, failures and the lease. */
import { beforeEach, describe, expect, it } from 'vitest';
import { FleetError } from '../src/core/errors.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { NewEvent } from '../src/store/store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const LEASE = 60_000;

const event = (type: string, extra: Partial<NewEvent> = {}): NewEvent => ({
  at: NOW,
  type,
  deviceId: null,
  rolloutId: null,
  actor: 'test',
  reason: null,
  data: {},
  ...extra,
});

const hook = (id: string, extra: { types?: string[]; rolloutId?: string | null } = {}) => ({
  id,
  url: `http://127.0.0.1:9/${id}`,
  secret: `secret-${id}`,
  types: extra.types ?? [],
  rolloutId: extra.rolloutId ?? null,
  createdAt: NOW,
});

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
  });

  describe('registration', () => {
    it('creates a webhook after the newest event, with its audit event, and reads it back', async () => {
      await store.appendEvents([event('device.registered'), event('device.registered')]);
      const created = await store.webhooks.create(
        hook('wh_1', { types: ['update.', 'rollout.'] }),
        'api:admin',
      );
      const audit = await store.listEvents({ limit: 10, typePrefix: 'webhook.' });
      expect(audit).toMatchObject([{ type: 'webhook.created', actor: 'api:admin', data: { id: 'wh_1' } }]);
      expect(JSON.stringify(audit[0]!.data)).not.toContain('secret-wh_1');
      expect(created).toEqual({
        ...hook('wh_1', { types: ['update.', 'rollout.'] }),
        disabledAt: null,
        cursor: audit[0]!.id,
        failures: 0,
        nextAttemptAt: 0,
        lastError: null,
        lastDeliveredAt: null,
        leaseOwner: null,
        leaseUntil: null,
      });
      expect(await store.webhooks.get('wh_1')).toEqual(created);
      expect(await store.webhooks.lag('wh_1')).toBe(0);
      await store.appendEvents([event('device.status'), event('update.failed')]);
      expect(await store.webhooks.lag('wh_1')).toBe(2);
    });

    it('lists webhooks in creation order and deletes them with an audit event', async () => {
      await store.webhooks.create(hook('wh_a'), 'test');
      await store.webhooks.create({ ...hook('wh_b', { rolloutId: 'ro_1' }), createdAt: NOW + 1 }, 'test');
      expect((await store.webhooks.list()).map((w) => [w.id, w.rolloutId])).toEqual([
        ['wh_a', null],
        ['wh_b', 'ro_1'],
      ]);
      await store.webhooks.delete('wh_a', NOW + 2, 'api:admin');
      expect((await store.webhooks.list()).map((w) => w.id)).toEqual(['wh_b']);
      expect(await store.webhooks.get('wh_a')).toBeUndefined();
      const deleted = await store.listEvents({ limit: 10, typePrefix: 'webhook.deleted' });
      expect(deleted).toMatchObject([{ actor: 'api:admin', data: { id: 'wh_a' } }]);
      await expect(store.webhooks.delete('wh_a', NOW, 'test')).rejects.toThrow(FleetError);
    });

    it('appends a test event addressed to the webhook, and refuses an unknown one', async () => {
      await store.webhooks.create(hook('wh_t'), 'test');
      const sent = await store.webhooks.sendTest('wh_t', NOW + 5, 'api:admin');
      expect(sent).toMatchObject({ type: 'webhook.test', actor: 'api:admin', data: { webhook_id: 'wh_t' } });
      expect(await store.listEvents({ after: sent.id - 1, limit: 1 })).toEqual([sent]);
      await expect(store.webhooks.sendTest('wh_none', NOW, 'test')).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });
  });

  describe('delivery state', () => {
    it('claims only due webhooks behind the head, not leased to another, and only once', async () => {
      await store.webhooks.create(hook('wh_1'), 'test');
      const second = await store.webhooks.create(hook('wh_2'), 'test');
      // wh_2 is at the head; wh_1 is behind it by wh_2's creation.
      let head = await store.lastEventId();
      expect(head).toBe(second.cursor);
      const behind = await store.webhooks.claim('a', {
        now: NOW,
        leaseMs: LEASE,
        limit: 10,
        headEventId: head,
      });
      expect(behind.map((w) => w.id)).toEqual(['wh_1']);
      await store.webhooks.release('wh_1', 'a');
      await store.appendEvents([event('device.status')]);
      head = await store.lastEventId();
      const first = await store.webhooks.claim('a', {
        now: NOW,
        leaseMs: LEASE,
        limit: 1,
        headEventId: head,
      });
      expect(first.map((w) => [w.leaseOwner, w.leaseUntil])).toEqual([['a', NOW + LEASE]]);
      const rest = await store.webhooks.claim('b', {
        now: NOW,
        leaseMs: LEASE,
        limit: 10,
        headEventId: head,
      });
      expect(rest.map((w) => w.id)).toEqual(['wh_1', 'wh_2'].filter((id) => id !== first[0]!.id));
      expect(
        await store.webhooks.claim('c', { now: NOW + 1, leaseMs: LEASE, limit: 10, headEventId: head }),
      ).toEqual([]);
      // A lease that ran out can be taken over.
      const later = await store.webhooks.claim('c', {
        now: NOW + LEASE,
        leaseMs: LEASE,
        limit: 10,
        headEventId: head,
      });
      expect(later.map((w) => w.leaseOwner)).toEqual(['c', 'c']);
    });

    it('advances the cursor only for the lease holder, and never backwards', async () => {
      await store.webhooks.create(hook('wh_1'), 'test');
      await store.appendEvents([event('a.1'), event('a.2'), event('a.3')]);
      const head = await store.lastEventId();
      await store.webhooks.claim('a', { now: NOW, leaseMs: LEASE, limit: 10, headEventId: head });
      const opts = { now: NOW + 1, delivered: true, leaseUntil: NOW + 1 + LEASE };
      expect(await store.webhooks.advance('wh_1', 'b', { ...opts, cursor: head })).toBe(false);
      expect(await store.webhooks.advance('wh_1', 'a', { ...opts, cursor: head - 1 })).toBe(true);
      expect(await store.webhooks.advance('wh_1', 'a', { ...opts, cursor: head - 2 })).toBe(false);
      expect(await store.webhooks.get('wh_1')).toMatchObject({
        cursor: head - 1,
        lastDeliveredAt: NOW + 1,
        leaseOwner: 'a',
        leaseUntil: NOW + 1 + LEASE,
      });
      expect(await store.webhooks.lag('wh_1')).toBe(1);
      await store.webhooks.release('wh_1', 'b');
      expect((await store.webhooks.get('wh_1'))!.leaseOwner).toBe('a');
      await store.webhooks.release('wh_1', 'a');
      expect(await store.webhooks.get('wh_1')).toMatchObject({ leaseOwner: null, leaseUntil: null });
    });

    it('counts failures, keeps the cursor, waits until the next attempt and clears all on success', async () => {
      const created = await store.webhooks.create(hook('wh_1'), 'test');
      await store.appendEvents([event('a.1')]);
      const head = await store.lastEventId();
      const claim = (now: number) =>
        store.webhooks.claim('a', { now, leaseMs: LEASE, limit: 10, headEventId: head });
      await claim(NOW);
      expect(await store.webhooks.recordFailure('wh_1', 'b', { error: 'x', nextAttemptAt: NOW })).toBe(false);
      expect(
        await store.webhooks.recordFailure('wh_1', 'a', { error: 'HTTP 500', nextAttemptAt: NOW + 5_000 }),
      ).toBe(true);
      expect(await store.webhooks.get('wh_1')).toMatchObject({
        cursor: created.cursor,
        failures: 1,
        lastError: 'HTTP 500',
        nextAttemptAt: NOW + 5_000,
        leaseOwner: null,
      });
      expect(await claim(NOW + 4_999)).toEqual([]);
      expect(await claim(NOW + 5_000)).toHaveLength(1);
      await store.webhooks.recordFailure('wh_1', 'a', {
        error: 'e'.repeat(5000),
        nextAttemptAt: NOW + 15_000,
      });
      const twice = await store.webhooks.get('wh_1');
      expect([twice!.failures, twice!.lastError!.length]).toEqual([2, 1000]);
      await claim(NOW + 15_000);
      await store.webhooks.advance('wh_1', 'a', {
        cursor: head,
        now: NOW + 15_001,
        delivered: true,
        leaseUntil: NOW + 15_001 + LEASE,
      });
      expect(await store.webhooks.get('wh_1')).toMatchObject({
        cursor: head,
        failures: 0,
        lastError: null,
        nextAttemptAt: 0,
      });
    });

    it('two handles racing for the same webhooks get each one once', async () => {
      const [one, two] = await backend.openPair();
      for (let i = 0; i < 20; i++)
        await one.webhooks.create(hook(`wh_${String(i).padStart(2, '0')}`), 'test');
      await one.appendEvents([event('a.1')]);
      const head = await one.lastEventId();
      for (let round = 0; round < 5; round++) {
        const now = NOW + round * LEASE;
        const claims = await Promise.all(
          [one, two, one, two].map((s, i) =>
            s.webhooks.claim(`r${i}`, { now, leaseMs: LEASE, limit: 20, headEventId: head }),
          ),
        );
        const ids = claims.flat().map((w) => w.id);
        expect(ids.sort()).toEqual([...new Set(ids)].sort());
        expect(ids).toHaveLength(20);
      }
    });
  });
});
