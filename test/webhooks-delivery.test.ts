/**
 * Webhook delivery against real HTTP receivers (node:http on 127.0.0.1) and a real store on every backend.
 * Time is a ManualClock: retries become due by advancing it, and tests call deliverDue() instead of sleeping.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { WebhookDispatcher, type WebhookDispatcherOptions } from '../src/events/webhook-dispatcher.js';
import { signatureMatches } from '../src/events/webhook-rules.js';
import { insertEvents } from '../src/store/shared/events.js';
import type { SqlStore } from '../src/store/sql-store.js';
import type { NewEvent } from '../src/store/store.js';
import { eventually } from './support/eventually.js';
import { freePort } from './support/processes.js';
import { type Receiver, startReceiver } from './support/receiver.js';
import { forEachBackend } from './support/stores.js';

const START = Date.UTC(2026, 0, 15, 12, 0, 0);
const SECRET = 'a-webhook-secret-of-some-length';

const event = (type: string, extra: Partial<NewEvent> = {}): NewEvent => ({
  at: START,
  type,
  deviceId: 'dev-1',
  rolloutId: null,
  actor: null,
  reason: null,
  data: { n: 1 },
  ...extra,
});

forEachBackend((backend) => {
  let store: SqlStore;
  let clock: ManualClock;
  const receivers: Receiver[] = [];
  const dispatchers: WebhookDispatcher[] = [];

  beforeEach(async () => {
    store = await backend.open();
    clock = new ManualClock(START);
  });
  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });

  async function receiver(port?: number) {
    const r = await startReceiver(port);
    receivers.push(r);
    return r;
  }
  function dispatcher(options: WebhookDispatcherOptions = {}, on: SqlStore = store) {
    // The receivers listen on loopback: allowed here as with --webhook-allow-private.
    const d = new WebhookDispatcher(on, clock, { random: () => 0, allowPrivate: true, ...options });
    dispatchers.push(d);
    return d;
  }
  async function webhook(url: string, extra: { types?: string[]; rolloutId?: string; id?: string } = {}) {
    return store.webhooks.create(
      {
        id: extra.id ?? 'wh_1',
        url,
        secret: SECRET,
        types: extra.types ?? [],
        rolloutId: extra.rolloutId ?? null,
        createdAt: clock.now(),
      },
      'test',
    );
  }
  async function append(types: string[], extra: Partial<NewEvent> = {}): Promise<number[]> {
    const before = await store.lastEventId();
    await store.appendEvents(types.map((t) => event(t, extra)));
    return (await store.listEvents({ after: before, limit: 1000 })).map((e) => e.id);
  }

  it('delivers events in order, in batches, signed, with the API event JSON', async () => {
    const r = await receiver();
    await webhook(r.url);
    const ids = await append(Array.from({ length: 7 }, (_, i) => `device.e${i}`));
    const outcomes = await dispatcher({ batchSize: 3 }).deliverDue();
    expect(outcomes).toEqual([{ webhookId: 'wh_1', delivered: 7, requests: 3, cursor: ids.at(-1) }]);
    expect(r.requests.map((q) => q.eventIds)).toEqual([ids.slice(0, 3), ids.slice(3, 6), ids.slice(6)]);
    const deliveries = new Set<string>();
    for (const q of r.requests) {
      expect(q.headers['content-type']).toBe('application/json');
      expect(signatureMatches(SECRET, q.body, String(q.headers['x-fleetd-signature']))).toBe(true);
      deliveries.add(String(q.headers['x-fleetd-delivery']));
    }
    expect(deliveries.size).toBe(3);
    expect(JSON.parse(r.requests[0]!.body).events[0]).toEqual({
      id: ids[0],
      at: new Date(START).toISOString(),
      type: 'device.e0',
      device_id: 'dev-1',
      rollout_id: null,
      actor: null,
      reason: null,
      data: { n: 1 },
    });
    expect(await store.webhooks.get('wh_1')).toMatchObject({ cursor: ids.at(-1), lastDeliveredAt: START });
    expect(await store.webhooks.lag('wh_1')).toBe(0);
    // Caught up: nothing more to send.
    expect(await dispatcher().deliverDue()).toEqual([]);
    expect(r.requests).toHaveLength(3);
  });

  it('retries after 500s with growing backoff and delivers each event once acknowledged, none lost', async () => {
    const r = await receiver();
    r.answers = [500, 500];
    await webhook(r.url);
    const ids = await append(['update.failed', 'update.installed']);
    const d = dispatcher();

    expect(await d.deliverDue()).toMatchObject([{ delivered: 0, error: 'HTTP 500 Internal Server Error' }]);
    const first = await store.webhooks.get('wh_1');
    expect(first).toMatchObject({
      failures: 1,
      lastError: 'HTTP 500 Internal Server Error',
      cursor: ids[0]! - 1,
    });
    expect(first!.nextAttemptAt).toBe(START + 5_000);

    // Not due yet: nothing is sent.
    clock.advance(4_999);
    expect(await d.deliverDue()).toEqual([]);
    clock.advance(1);
    // An event appended meanwhile joins the retried batch.
    ids.push(...(await append(['rollout.paused'])));
    expect(await d.deliverDue()).toMatchObject([{ error: 'HTTP 500 Internal Server Error' }]);
    expect(await store.webhooks.get('wh_1')).toMatchObject({
      failures: 2,
      nextAttemptAt: clock.now() + 10_000,
    });

    clock.advance(10_000);
    expect(await d.deliverDue()).toMatchObject([{ delivered: 3, requests: 1 }]);
    expect(r.requests.map((q) => q.status)).toEqual([500, 500, 200]);
    expect(r.acknowledged()).toEqual(ids);
    expect(await store.webhooks.get('wh_1')).toMatchObject({
      failures: 0,
      lastError: null,
      nextAttemptAt: 0,
      cursor: ids.at(-1),
    });
  });

  it('catches up once a receiver that was down comes up', async () => {
    const port = await freePort();
    await webhook(`http://127.0.0.1:${port}/hook`);
    const ids = await append(['device.a', 'device.b']);
    const d = dispatcher();
    const [down] = await d.deliverDue();
    expect(down!.error).toBe('ECONNREFUSED');
    expect((await store.webhooks.get('wh_1'))!.lastError).toBe('ECONNREFUSED');
    ids.push(...(await append(['device.c'])));
    const r = await receiver(port);
    clock.advance(5_000);
    expect(await d.deliverDue()).toMatchObject([{ delivered: 3 }]);
    expect(r.acknowledged()).toEqual(ids);
  });

  it('sends only the types and the rollout asked for, and moves past the rest', async () => {
    const r = await receiver();
    await webhook(r.url, { types: ['update.failed', 'rollout.'] });
    const other = await receiver();
    await webhook(other.url, { id: 'wh_2', types: ['update.'], rolloutId: 'ro_1' });
    const [, failed, , paused, , ro1, ro2] = await Promise.all([]).then(async () => [
      ...(await append(['device.status'])),
      ...(await append(['update.failed'])),
      ...(await append(['update.installed'])),
      ...(await append(['rollout.paused'])),
      ...(await append(['device.registered'])),
      ...(await append(['update.installed'], { rolloutId: 'ro_1' })),
      ...(await append(['update.installed'], { rolloutId: 'ro_2' })),
    ]);
    await dispatcher().deliverDue();
    expect(r.acknowledged()).toEqual([failed, paused]);
    expect(other.acknowledged()).toEqual([ro1]);
    expect(ro2).toBeGreaterThan(ro1!);
    // Both cursors moved to the head, past events they did not want.
    const head = await store.lastEventId();
    expect((await store.webhooks.list()).map((w) => w.cursor)).toEqual([head, head]);
    // A pass where nothing matches sends nothing but still moves the cursor.
    const more = await append(['device.status']);
    await dispatcher().deliverDue();
    expect(r.requests).toHaveLength(1);
    expect((await store.webhooks.get('wh_1'))!.cursor).toBe(more[0]);
  });

  it('a dead webhook (no answer) times out without holding up another', async () => {
    const dead = await receiver();
    dead.answers = ['hold'];
    const live = await receiver();
    await webhook(dead.url, { id: 'wh_dead' });
    await webhook(live.url, { id: 'wh_live' });
    const ids = await append(['device.a']);
    const pass = dispatcher({ timeoutMs: 300 }).deliverDue();
    // The live receiver gets its events while the dead one still has the request open.
    await eventually('the live receiver to get one request', () => live.requests.length === 1, {
      intervalMs: 5,
    });
    expect(dead.open).toBe(1);
    const outcomes = await pass;
    expect(outcomes.find((o) => o.webhookId === 'wh_dead')).toMatchObject({
      error: 'no answer within 300 ms',
    });
    expect(live.acknowledged()).toContain(ids[0]);
    expect(await store.webhooks.get('wh_dead')).toMatchObject({
      failures: 1,
      lastError: 'no answer within 300 ms',
    });
  });

  it('resumes from the stored cursor after a crash between the 2xx and the cursor update', async () => {
    const [first, second] = await backend.openPair();
    store = first;
    const r = await receiver();
    await webhook(r.url);
    const before = await append(['device.a', 'device.b']);
    await dispatcher({}, first).deliverDue();
    expect(r.acknowledged()).toEqual(before);

    // The next batch is acknowledged, but the replica dies (its database handle with it) before it can move
    // the cursor: as after kill -9, the cursor and the lease stay as they were.
    const lost = await append(['device.c', 'device.d']);
    r.beforeAnswer = () => first.close();
    const [crashed] = await dispatcher({ leaseMs: 60_000 }, first).deliverDue();
    expect(crashed!.error).toBeDefined();
    const stale = await second.webhooks.get('wh_1');
    expect(stale).toMatchObject({ cursor: before.at(-1) });
    expect(stale!.leaseOwner).not.toBeNull();

    store = second;
    const after = await append(['device.e']);
    const restarted = dispatcher({}, second);
    // The dead replica's lease holds until it runs out; then the new one resends from the cursor.
    expect(await restarted.deliverDue()).toEqual([]);
    clock.advance(60_000);
    expect(await restarted.deliverDue()).toMatchObject([{ delivered: 3 }]);
    // Duplicates allowed (c, d twice), losses not, order kept.
    expect(r.acknowledged()).toEqual([...before, ...lost, ...lost, ...after]);
  });

  it('two replicas on one database never deliver to a webhook at the same time, nor a batch twice', async () => {
    const [one, two] = await backend.openPair();
    store = one;
    const r = await receiver();
    await webhook(r.url);
    const a = dispatcher({ owner: 'replica-a' }, one);
    const b = dispatcher({ owner: 'replica-b' }, two);

    // A holds the webhook while its request is open: B finds nothing to claim.
    const first = await append(['device.a']);
    r.answers = ['hold'];
    const pass = a.deliverDue();
    await eventually('one connection to be open', () => r.open === 1);
    expect(await b.deliverDue()).toEqual([]);
    r.release();
    expect(await pass).toMatchObject([{ delivered: 1 }]);

    // Then both race, pass after pass.
    const all = [...first];
    for (let round = 0; round < 15; round++) {
      all.push(...(await append([`device.r${round}`, `device.s${round}`])));
      await Promise.all([a.deliverDue(), b.deliverDue(), a.deliverDue(), b.deliverDue()]);
    }
    expect(r.maxOpen).toBe(1);
    expect(r.acknowledged()).toEqual(all);
  });

  if (backend.name === 'postgres') {
    it('waits for an event whose transaction commits after a later one, instead of skipping it', async () => {
      const r = await receiver();
      await webhook(r.url);
      let commit!: () => void;
      const committed = new Promise<void>((resolve) => {
        commit = resolve;
      });
      let written!: () => void;
      const inFlight = new Promise<void>((resolve) => {
        written = resolve;
      });
      // This transaction takes its event id first and commits last.
      const slow = store.db.transaction().execute(async (trx) => {
        await insertEvents(trx, [event('update.slow')]);
        written();
        await committed;
      });
      await inFlight;
      const later = await append(['update.fast']);
      const d = dispatcher({ gapGraceMs: 60_000 });
      expect(await d.deliverDue()).toMatchObject([{ delivered: 0 }]);
      expect(r.requests).toHaveLength(0);
      commit();
      await slow;
      expect(await d.deliverDue()).toMatchObject([{ delivered: 2 }]);
      expect(r.acknowledged()).toEqual([later[0]! - 1, later[0]]);
    });

    it('passes an id a rolled-back transaction left unused once the grace period is over', async () => {
      const r = await receiver();
      await webhook(r.url);
      await store.db
        .transaction()
        .execute(async (trx) => {
          await insertEvents(trx, [event('update.rolled-back')]);
          throw new Error('roll back');
        })
        .catch(() => undefined);
      const ids = await append(['update.kept']);
      const d = dispatcher({ gapGraceMs: 30_000 });
      await d.deliverDue();
      clock.advance(29_999);
      await d.deliverDue();
      expect(r.requests).toHaveLength(0);
      clock.advance(1);
      expect(await d.deliverDue()).toMatchObject([{ delivered: 1 }]);
      expect(r.acknowledged()).toEqual(ids);
    });
  }
});
