/**
 * Webhooks and their delivery state over Kysely, for both dialects. The lease is a compare-and-set on one row
 * (`lease_until` free or past), so on PostgreSQL two replicas racing for a webhook get it once: the loser's
 * UPDATE waits for the winner's row lock, re-checks the condition and changes nothing.
 */
import type { Kysely, Selectable } from 'kysely';
import { FleetError } from '../../core/errors.js';
import { shownUrl } from '../../core/shown-url.js';
import type { Database, WebhooksTable } from '../schema.js';
import type { NewWebhook, StoredEvent, Webhook, WebhookStore } from '../store.js';
import { insertEvents } from './events.js';

function rowToWebhook(row: Selectable<WebhooksTable>): Webhook {
  const num = (v: number | null) => (v === null ? null : Number(v));
  return {
    id: row.id,
    url: row.url,
    secret: row.secret,
    types: JSON.parse(row.types) as string[],
    rolloutId: row.rollout_id,
    createdAt: Number(row.created_at),
    disabledAt: num(row.disabled_at),
    cursor: Number(row.cursor_event_id),
    failures: Number(row.failures),
    nextAttemptAt: Number(row.next_attempt_at),
    lastError: row.last_error,
    lastDeliveredAt: num(row.last_delivered_at),
    leaseOwner: row.lease_owner,
    leaseUntil: num(row.lease_until),
  };
}

/** Longest error text kept: enough for a status line and a response excerpt. */
const MAX_ERROR = 1000;

export class SqlWebhooks implements WebhookStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(webhook: NewWebhook, actor: string): Promise<Webhook> {
    return this.db.transaction().execute(async (trx) => {
      await insertEvents(trx, [
        {
          at: webhook.createdAt,
          type: 'webhook.created',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: {
            id: webhook.id,
            url: shownUrl(webhook.url),
            types: webhook.types,
            rollout: webhook.rolloutId,
          },
        },
      ]);
      // From now on: after the newest event, its own creation included.
      const head = await trx
        .selectFrom('events')
        .select((eb) => eb.fn.max('id').as('id'))
        .executeTakeFirst();
      const row = await trx
        .insertInto('webhooks')
        .values({
          id: webhook.id,
          url: webhook.url,
          secret: webhook.secret,
          types: JSON.stringify(webhook.types),
          rollout_id: webhook.rolloutId,
          created_at: webhook.createdAt,
          disabled_at: null,
          cursor_event_id: Number(head?.id ?? 0),
          failures: 0,
          next_attempt_at: 0,
          last_error: null,
          last_delivered_at: null,
          lease_owner: null,
          lease_until: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return rowToWebhook(row);
    });
  }

  async list(): Promise<Webhook[]> {
    const rows = await this.db
      .selectFrom('webhooks')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(rowToWebhook);
  }

  async get(id: string): Promise<Webhook | undefined> {
    const row = await this.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
    return row && rowToWebhook(row);
  }

  async delete(id: string, at: number, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await trx
        .deleteFrom('webhooks')
        .where('id', '=', id)
        .returning(['url', 'cursor_event_id'])
        .executeTakeFirst();
      if (!row) throw new FleetError('NOT_FOUND', `webhook ${id} does not exist`);
      await insertEvents(trx, [
        {
          at,
          type: 'webhook.deleted',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: { id, url: shownUrl(row.url), cursor: Number(row.cursor_event_id) },
        },
      ]);
    });
  }

  async sendTest(id: string, at: number, actor: string): Promise<StoredEvent> {
    return this.db.transaction().execute(async (trx) => {
      const exists = await trx.selectFrom('webhooks').select('id').where('id', '=', id).executeTakeFirst();
      if (!exists) throw new FleetError('NOT_FOUND', `webhook ${id} does not exist`);
      const data = { webhook_id: id };
      const row = await trx
        .insertInto('events')
        .values({
          at,
          type: 'webhook.test',
          device_id: null,
          rollout_id: null,
          actor,
          reason: 'test',
          data: JSON.stringify(data),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return {
        id: Number(row.id),
        at,
        type: 'webhook.test',
        deviceId: null,
        rolloutId: null,
        actor,
        reason: 'test',
        data,
      };
    });
  }

  async lag(id: string): Promise<number> {
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('id', '>', (eb) =>
        eb.selectFrom('webhooks').select('cursor_event_id').where('webhooks.id', '=', id),
      )
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async claim(
    owner: string,
    options: { now: number; leaseMs: number; limit: number; headEventId: number },
  ): Promise<Webhook[]> {
    const { now, leaseMs, limit, headEventId } = options;
    if (limit <= 0) return [];
    const candidates = await this.db
      .selectFrom('webhooks')
      .select('id')
      .where('disabled_at', 'is', null)
      .where('next_attempt_at', '<=', now)
      .where('cursor_event_id', '<', headEventId)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
      .orderBy('next_attempt_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    const claimed: Webhook[] = [];
    for (const { id } of candidates) {
      const row = await this.db
        .updateTable('webhooks')
        .set({ lease_owner: owner, lease_until: now + leaseMs })
        .where('id', '=', id)
        .where('disabled_at', 'is', null)
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
        .returningAll()
        .executeTakeFirst();
      if (row) claimed.push(rowToWebhook(row));
    }
    return claimed;
  }

  async advance(
    id: string,
    owner: string,
    options: { cursor: number; now: number; delivered: boolean; leaseUntil: number },
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('webhooks')
      .set({
        cursor_event_id: options.cursor,
        failures: 0,
        next_attempt_at: 0,
        last_error: null,
        lease_until: options.leaseUntil,
        ...(options.delivered ? { last_delivered_at: options.now } : {}),
      })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('cursor_event_id', '<=', options.cursor)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async recordFailure(
    id: string,
    owner: string,
    options: { error: string; nextAttemptAt: number },
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('webhooks')
      .set((eb) => ({
        failures: eb('failures', '+', 1),
        last_error: options.error.slice(0, MAX_ERROR),
        next_attempt_at: options.nextAttemptAt,
        lease_owner: null,
        lease_until: null,
      }))
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async release(id: string, owner: string): Promise<void> {
    await this.db
      .updateTable('webhooks')
      .set({ lease_owner: null, lease_until: null })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .execute();
  }
}
