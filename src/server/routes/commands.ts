/**
 * Remote commands (docs/remote-commands.md): the operator sends one to devices by id or filter and reads each
 * device's result and collected logs; a device posts its result for a command it was handed. Delivery itself
 * rides the heartbeat answer (routes/device-api.ts, and MQTT).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  checkCommand,
  DEFAULT_COMMAND_CONCURRENCY,
  DEFAULT_COMMAND_DEADLINE_MS,
  MAX_COMMAND_DEADLINE_MS,
  MAX_COMMAND_LOGS_BYTES,
} from '../../core/command.js';
import { parseDuration } from '../../core/duration.js';
import { FleetError } from '../../core/errors.js';
import { parseFilter } from '../../core/filter/index.js';
import {
  CommandDeviceParams,
  CommandJson,
  CommandParams,
  CommandResultBody,
  CommandResultReply,
  CreateCommandBody,
  CreateCommandReply,
  commandSpec,
  DeviceCommandList,
  summaryJson,
  targetJson,
} from '../../protocol/commands.js';
import { withErrors } from '../../protocol/common.js';
import { DeviceParams } from '../../protocol/operator-api.js';
import { newId } from '../../registry/credentials.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, authenticateDevice, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { mustSeeDevice, mustStayInScope, ofVisibleDevices, scopedFilter } from '../scope.js';

/** The devices shown with a command; the rest are counted. */
const SHOWN_TARGETS = 1_000;
const CANONICAL_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Result bodies carry up to 1 MiB of logs in base64, plus the output. */
const RESULT_BODY_LIMIT = 2 * 1024 * 1024;

export const commandRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/commands',
      {
        config: { permission: 'commands.run' },
        schema: {
          summary:
            'Send a remote command to devices by id or filter: queued per device, delivered on its next heartbeat (at once over MQTT)',
          tags: ['commands'],
          body: CreateCommandBody,
          response: withErrors({ 201: CreateCommandReply, 200: CreateCommandReply }),
        },
      },
      async (request, reply) => {
        const operator = operatorOf(request);
        const body = request.body;
        // Everything is checked before the first write: the command, its deadline, the filter.
        const spec = checkCommand(commandSpec(body.command));
        const deadlineMs =
          body.deadline === undefined
            ? DEFAULT_COMMAND_DEADLINE_MS
            : parseDuration(body.deadline, 'deadline', MAX_COMMAND_DEADLINE_MS);
        const filter = 'filter' in body ? parseFilter(body.filter) : undefined;
        if ('filter' in body && filter === undefined) {
          throw new FleetError('VALIDATION', 'filter: an empty filter would take every device; name some');
        }
        const ids = 'ids' in body ? body.ids : [];
        // A scoped caller reaches the devices of its scope only: a filter is narrowed, ids are checked.
        if (filter === undefined) await mustStayInScope(c, request, ids);
        const selection =
          filter === undefined ? { ids } : { filter: scopedFilter(request, filter) ?? filter };
        const ctx = timeContext(c);
        const { command, results } = await c.store.commands.create(
          {
            id: newId('cmd'),
            spec,
            expiresAt: ctx.now + deadlineMs,
            maxConcurrent: body.max_concurrent ?? DEFAULT_COMMAND_CONCURRENCY,
          },
          selection,
          ctx,
          actorOf(operator),
        );
        // The kind and how many devices it went to; never the script (a signed shell script) or its signature.
        auditChange(request, null, {
          kind: spec.kind,
          ...(spec.app === undefined ? {} : { app: spec.app }),
          targets: Object.values(command?.counts ?? {}).reduce((sum, n) => sum + (n ?? 0), 0),
        });
        return reply
          .status(command ? 201 : 200)
          .send({ command: command ? { ...summaryJson(command), counts: command.counts } : null, results });
      },
    );

    app.get(
      '/commands/:id',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: "A command and each device's state and result (exit code, output tail)",
          tags: ['commands'],
          params: CommandParams,
          response: withErrors({ 200: CommandJson }),
        },
      },
      async (request) => {
        const command = await c.store.commands.get(request.params.id);
        if (!command) throw new FleetError('NOT_FOUND', `no command ${request.params.id}`);
        const all = await c.store.commands.targets(command.id, SHOWN_TARGETS);
        const targets = await ofVisibleDevices(c, request, all);
        // A scoped caller sees its devices only, and counts of them; a command with none of them is not there.
        if (targets.length < all.length) {
          if (targets.length === 0) throw new FleetError('NOT_FOUND', `no command ${request.params.id}`);
          const counts: Partial<Record<string, number>> = {};
          for (const t of targets) counts[t.state] = (counts[t.state] ?? 0) + 1;
          return { ...summaryJson(command), counts, devices: targets.map(targetJson) };
        }
        return { ...summaryJson(command), counts: command.counts, devices: targets.map(targetJson) };
      },
    );

    app.get(
      '/commands/:id/devices/:device/logs',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: 'Download the logs a device collected for a collect-logs command',
          tags: ['commands'],
          params: CommandDeviceParams,
        },
      },
      async (request, reply) => {
        const { id, device } = request.params;
        await mustSeeDevice(c, request, device);
        const logs = await c.store.commands.logs(id, device);
        if (logs === undefined) throw new FleetError('NOT_FOUND', `no logs from ${device} for command ${id}`);
        return reply
          .type('application/octet-stream')
          .header('content-disposition', `attachment; filename="${id}-${device}.log"`)
          .send(Buffer.from(logs, 'base64'));
      },
    );

    app.get(
      '/devices/:id/commands',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: "A device's commands, newest first, with its result of each",
          tags: ['commands'],
          params: DeviceParams,
          querystring: Type.Object(
            { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) },
            { additionalProperties: false },
          ),
          response: withErrors({ 200: DeviceCommandList }),
        },
      },
      async (request) => {
        const id = request.params.id;
        await mustSeeDevice(c, request, id);
        if (!(await c.store.getDevice(id, timeContext(c)))) {
          throw new FleetError('DEVICE_NOT_FOUND', `device ${id} does not exist`);
        }
        const rows = await c.store.commands.ofDevice(id, request.query.limit ?? 100);
        return { commands: rows.map((r) => ({ ...summaryJson(r.command), result: targetJson(r.target) })) };
      },
    );
  };

export const deviceCommandApi =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/commands/:id/result',
      {
        bodyLimit: RESULT_BODY_LIMIT,
        schema: {
          summary: 'Post the result of a command this device was handed; sent again, it changes nothing',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          params: CommandParams,
          body: CommandResultBody,
          response: withErrors({ 200: CommandResultReply }),
        },
      },
      async (request) => {
        const deviceId = await authenticateDevice(c, request);
        const b = request.body;
        let logs: { base64: string; bytes: number } | undefined;
        if (b.logs !== undefined) {
          if (!CANONICAL_B64.test(b.logs)) throw new FleetError('VALIDATION', 'logs: not canonical base64');
          const bytes = Buffer.byteLength(b.logs, 'base64');
          if (bytes > MAX_COMMAND_LOGS_BYTES) {
            throw new FleetError('PAYLOAD_TOO_LARGE', `logs: at most ${MAX_COMMAND_LOGS_BYTES} bytes`);
          }
          logs = { base64: b.logs, bytes };
        }
        return c.store.commands.recordResult(
          deviceId,
          request.params.id,
          {
            exitCode: b.exit_code,
            output: b.output,
            outputTruncated: b.output_truncated,
            error: b.error,
            ...(logs ? { logs } : {}),
          },
          timeContext(c),
        );
      },
    );
  };
