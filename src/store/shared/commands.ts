/**
 * Remote commands in shared SQL (docs/remote-commands.md). A command is one row, each device it targets another
 * with that device's state and result; every move is written with its event. A device's heartbeat takes its
 * queued rows (`deliver`) while its command's concurrency allows, and never after the deadline; `expire` closes
 * what the deadline left open.
 */
import type { CommandSpec, CommandState } from '../../core/command.js';
import { OPEN_COMMAND_STATES, resultState } from '../../core/command.js';
import { FleetError } from '../../core/errors.js';
import type { FilterNode } from '../../core/filter/index.js';
import type { SqlContext } from '../adapter.js';
import { byteOrder } from '../byte-order.js';
import type { CommandsTable, CommandTargetsTable } from '../schema.js';
import type {
  CommandResult,
  CommandStore,
  CommandTarget,
  CommandTargetResult,
  DeliveredCommand,
  NewEvent,
  NewRemoteCommand,
  RemoteCommand,
  TimeContext,
} from '../store.js';
import { selectedDeviceIds } from './device-selection.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';

/** At most this many devices take one command sent by filter. */
export const MAX_COMMAND_TARGETS = 10_000;

const event = (
  type: string,
  deviceId: string | null,
  at: number,
  actor: string,
  data: Record<string, unknown>,
  reason: string | null = null,
): NewEvent => ({ at, type, deviceId, rolloutId: null, actor, reason, data });

type CommandRow = Pick<
  CommandsTable,
  'id' | 'kind' | 'spec' | 'created_at' | 'expires_at' | 'max_concurrent' | 'actor'
>;

function specOf(row: CommandRow): CommandSpec {
  return { kind: row.kind, ...(JSON.parse(row.spec) as Omit<CommandSpec, 'kind'>) };
}

function commandOf(row: CommandRow, counts: RemoteCommand['counts']): RemoteCommand {
  return {
    id: row.id,
    spec: specOf(row),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    maxConcurrent: row.max_concurrent,
    actor: row.actor,
    counts,
  };
}

function targetOf(r: Omit<CommandTargetsTable, 'logs'>): CommandTarget {
  const time = (v: number | null) => (v === null ? null : Number(v));
  return {
    commandId: r.command_id,
    deviceId: r.device_id,
    state: r.state,
    deliveredAt: time(r.delivered_at),
    finishedAt: time(r.finished_at),
    exitCode: r.exit_code,
    output: r.output,
    outputTruncated: r.output_truncated === 1,
    error: r.error,
    logsBytes: r.logs_bytes,
  };
}

const TARGET_COLUMNS = [
  'command_id',
  'device_id',
  'state',
  'delivered_at',
  'finished_at',
  'exit_code',
  'output',
  'output_truncated',
  'error',
  'logs_bytes',
] as const;

export class SqlCommands implements CommandStore {
  constructor(private readonly s: SqlContext) {}

  create(
    command: NewRemoteCommand,
    selection: { ids: string[] } | { filter: FilterNode },
    ctx: TimeContext,
    actor: string,
  ): Promise<{ command: RemoteCommand | undefined; results: CommandTargetResult[] }> {
    return this.s.db.transaction().execute(async (trx) => {
      const ids = await selectedDeviceIds(trx, selection, ctx, MAX_COMMAND_TARGETS, (q) =>
        q.where('admission', '=', 'accepted'),
      );
      const found = new Map<string, number | null>();
      for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
        const rows = await trx
          .selectFrom('devices')
          .select(['id', 'decommissioned_at'])
          .where('id', 'in', ids.slice(i, i + INSERT_CHUNK))
          .execute();
        for (const r of rows) found.set(r.id, r.decommissioned_at);
      }
      const results: CommandTargetResult[] = [];
      const taken: string[] = [];
      for (const id of ids) {
        if (!found.has(id)) {
          results.push({
            id,
            ok: false,
            error: { code: 'DEVICE_NOT_FOUND', message: `device ${id} does not exist` },
          });
        } else if (found.get(id) !== null) {
          results.push({
            id,
            ok: false,
            error: { code: 'DEVICE_DECOMMISSIONED', message: `device ${id} is decommissioned` },
          });
        } else {
          taken.push(id);
          results.push({ id, ok: true });
        }
      }
      if (taken.length === 0) return { command: undefined, results };
      const { kind, ...fields } = command.spec;
      const row: CommandsTable = {
        id: command.id,
        kind,
        spec: JSON.stringify(fields),
        created_at: ctx.now,
        expires_at: command.expiresAt,
        max_concurrent: command.maxConcurrent,
        actor,
      };
      await trx.insertInto('commands').values(row).execute();
      for (let i = 0; i < taken.length; i += INSERT_CHUNK) {
        await trx
          .insertInto('command_targets')
          .values(
            taken.slice(i, i + INSERT_CHUNK).map((device_id) => ({
              command_id: command.id,
              device_id,
              state: 'queued' as const,
              delivered_at: null,
              finished_at: null,
              exit_code: null,
              output: null,
              output_truncated: 0,
              error: null,
              logs: null,
              logs_bytes: null,
            })),
          )
          .execute();
      }
      // The script is not copied into the events: they list what was asked, for whom, by whom.
      const about = { command_id: command.id, kind };
      await insertEvents(trx, [
        event('command.created', null, ctx.now, actor, { ...about, devices: taken.length }),
        ...taken.map((id) => event('command.queued', id, ctx.now, actor, about)),
      ]);
      return { command: commandOf(row, { queued: taken.length }), results };
    });
  }

  async get(id: string): Promise<RemoteCommand | undefined> {
    const row = await this.s.db.selectFrom('commands').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return commandOf(row, await this.counts(this.s.db, id));
  }

  private async counts(db: Db, id: string): Promise<RemoteCommand['counts']> {
    const rows = await db
      .selectFrom('command_targets')
      .select(['state', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('command_id', '=', id)
      .groupBy('state')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  async targets(id: string, limit: number): Promise<CommandTarget[]> {
    const rows = await this.s.db
      .selectFrom('command_targets')
      .select(TARGET_COLUMNS)
      .where('command_id', '=', id)
      .orderBy('device_id')
      .limit(limit)
      .execute();
    return rows.map(targetOf);
  }

  async ofDevice(
    deviceId: string,
    limit: number,
  ): Promise<Array<{ command: RemoteCommand; target: CommandTarget }>> {
    const rows = await this.s.db
      .selectFrom('command_targets as t')
      .innerJoin('commands as c', 'c.id', 't.command_id')
      .select(TARGET_COLUMNS.map((c) => `t.${c}` as const))
      .select(['c.id', 'c.kind', 'c.spec', 'c.created_at', 'c.expires_at', 'c.max_concurrent', 'c.actor'])
      .where('t.device_id', '=', deviceId)
      .orderBy('c.created_at', 'desc')
      .orderBy('c.id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ command: commandOf(r, {}), target: targetOf(r) }));
  }

  async deliver(deviceIds: readonly string[], ctx: TimeContext): Promise<Map<string, DeliveredCommand[]>> {
    const out = new Map<string, DeliveredCommand[]>();
    // Most heartbeats find nothing queued: one indexed read, no transaction.
    const queued = await this.queuedFor(this.s.db, deviceIds);
    if (queued.length === 0) return out;
    return this.s.db.transaction().execute(async (trx) => {
      const commandIds = [...new Set(queued.map((q) => q.command_id))].sort(byteOrder);
      // Replicas delivering the same command at once would each see its free slots: the second waits.
      if (this.s.adapter.locksRows) {
        await trx
          .selectFrom('commands')
          .select('id')
          .where('id', 'in', commandIds)
          .orderBy('id')
          .forUpdate()
          .execute();
      }
      const commands = await trx
        .selectFrom('commands')
        .selectAll()
        .where('id', 'in', commandIds)
        .where('expires_at', '>', ctx.now)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      if (commands.length === 0) return out;
      const running = new Map(
        (
          await trx
            .selectFrom('command_targets')
            .select(['command_id', (eb) => eb.fn.countAll<number | string>().as('n')])
            .where(
              'command_id',
              'in',
              commands.map((c) => c.id),
            )
            .where('state', '=', 'delivered')
            .groupBy('command_id')
            .execute()
        ).map((r) => [r.command_id, Number(r.n)]),
      );
      const stillQueued = await this.queuedFor(trx, deviceIds);
      const events: NewEvent[] = [];
      for (const c of commands) {
        const free = c.max_concurrent - (running.get(c.id) ?? 0);
        if (free <= 0) continue;
        const devices = stillQueued
          .filter((q) => q.command_id === c.id)
          .map((q) => q.device_id)
          .slice(0, free);
        if (devices.length === 0) continue;
        await trx
          .updateTable('command_targets')
          .set({ state: 'delivered', delivered_at: ctx.now })
          .where('command_id', '=', c.id)
          .where('device_id', 'in', devices)
          .where('state', '=', 'queued')
          .execute();
        const delivered: DeliveredCommand = { id: c.id, spec: specOf(c), expiresAt: Number(c.expires_at) };
        for (const d of devices) {
          out.set(d, [...(out.get(d) ?? []), delivered]);
          events.push(
            event('command.delivered', d, ctx.now, `device:${d}`, { command_id: c.id, kind: c.kind }),
          );
        }
      }
      await insertEvents(trx, events);
      return out;
    });
  }

  private async queuedFor(db: Db, deviceIds: readonly string[]) {
    const rows: Array<{ command_id: string; device_id: string }> = [];
    for (let i = 0; i < deviceIds.length; i += INSERT_CHUNK) {
      rows.push(
        ...(await db
          .selectFrom('command_targets')
          .select(['command_id', 'device_id'])
          .where('device_id', 'in', deviceIds.slice(i, i + INSERT_CHUNK))
          .where('state', '=', 'queued')
          .orderBy('device_id')
          .execute()),
      );
    }
    return rows;
  }

  recordResult(
    deviceId: string,
    commandId: string,
    result: CommandResult,
    ctx: TimeContext,
  ): Promise<{ accepted: boolean; state: CommandState }> {
    return this.s.db.transaction().execute(async (trx) => {
      const row = await this.s.adapter
        .lockRowsForUpdate(
          trx
            .selectFrom('command_targets')
            .select(['state', 'delivered_at'])
            .where('command_id', '=', commandId)
            .where('device_id', '=', deviceId),
        )
        .executeTakeFirst();
      // Another device's command looks the same as none at all.
      if (!row) throw new FleetError('NOT_FOUND', `no command ${commandId} for device ${deviceId}`);
      if (row.state === 'succeeded' || row.state === 'failed') return { accepted: false, state: row.state };
      if (row.delivered_at === null) {
        throw new FleetError(
          'TRANSITION_NOT_ALLOWED',
          `command ${commandId} was never delivered to ${deviceId} (it is ${row.state})`,
        );
      }
      const state = resultState(result.exitCode, result.error);
      await trx
        .updateTable('command_targets')
        .set({
          state,
          finished_at: ctx.now,
          exit_code: result.exitCode,
          output: result.output,
          output_truncated: result.outputTruncated ? 1 : 0,
          error: result.error,
          logs: result.logs?.base64 ?? null,
          logs_bytes: result.logs?.bytes ?? null,
        })
        .where('command_id', '=', commandId)
        .where('device_id', '=', deviceId)
        .execute();
      await insertEvents(trx, [
        event(
          `command.${state}`,
          deviceId,
          ctx.now,
          `device:${deviceId}`,
          {
            command_id: commandId,
            exit_code: result.exitCode,
            ...(result.logs ? { logs_bytes: result.logs.bytes } : {}),
            ...(row.state === 'expired' ? { after_deadline: true } : {}),
          },
          result.error,
        ),
      ]);
      return { accepted: true, state };
    });
  }

  async nextInLine(commandId: string, now: number): Promise<string[]> {
    const command = await this.s.db
      .selectFrom('commands')
      .select('max_concurrent')
      .where('id', '=', commandId)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (!command) return [];
    const running = await this.s.db
      .selectFrom('command_targets')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('command_id', '=', commandId)
      .where('state', '=', 'delivered')
      .executeTakeFirstOrThrow();
    const free = command.max_concurrent - Number(running.n);
    if (free <= 0) return [];
    const rows = await this.s.db
      .selectFrom('command_targets')
      .select('device_id')
      .where('command_id', '=', commandId)
      .where('state', '=', 'queued')
      .orderBy('device_id')
      .limit(free)
      .execute();
    return rows.map((r) => r.device_id);
  }

  async logs(commandId: string, deviceId: string): Promise<string | undefined> {
    const row = await this.s.db
      .selectFrom('command_targets')
      .select('logs')
      .where('command_id', '=', commandId)
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return row?.logs ?? undefined;
  }

  expire(ctx: TimeContext, limit = 10_000): Promise<number> {
    return this.s.db.transaction().execute(async (trx) => {
      const due = await this.s.adapter
        .lockRowsForUpdate(
          trx
            .selectFrom('command_targets as t')
            .innerJoin('commands as c', 'c.id', 't.command_id')
            .select(['t.command_id', 't.device_id', 't.state', 'c.kind'])
            .where('t.state', 'in', OPEN_COMMAND_STATES)
            .where('c.expires_at', '<=', ctx.now)
            .orderBy('t.command_id')
            .orderBy('t.device_id')
            .limit(limit),
        )
        .execute();
      const byCommand = new Map<string, string[]>();
      for (const d of due) byCommand.set(d.command_id, [...(byCommand.get(d.command_id) ?? []), d.device_id]);
      for (const [commandId, devices] of byCommand) {
        for (let i = 0; i < devices.length; i += INSERT_CHUNK) {
          await trx
            .updateTable('command_targets')
            .set({ state: 'expired', finished_at: ctx.now })
            .where('command_id', '=', commandId)
            .where('device_id', 'in', devices.slice(i, i + INSERT_CHUNK))
            .where('state', 'in', OPEN_COMMAND_STATES)
            .execute();
        }
      }
      await insertEvents(
        trx,
        due.map((d) =>
          event(
            'command.expired',
            d.device_id,
            ctx.now,
            'fleetd',
            { command_id: d.command_id, kind: d.kind, from: d.state },
            d.state === 'queued'
              ? 'the deadline passed before the device asked'
              : 'no result before the deadline',
          ),
        ),
      );
      return due.length;
    });
  }
}
