/**
 * Telemetry and inventory (docs/telemetry.md): a device posts its report; the operator reads a device's series
 * (raw or hourly) and its latest inventory. Reading needs `devices.read`, within the caller's scope.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { parseDuration } from '../../core/duration.js';
import { FleetError } from '../../core/errors.js';
import { DEFAULT_TELEMETRY_RETENTION, type TelemetryRetention } from '../../core/telemetry.js';
import { withErrors } from '../../protocol/common.js';
import { DeviceParams } from '../../protocol/operator-api.js';
import {
  InventoryReply,
  inventoryJson,
  METRIC_NAME,
  TelemetryBody,
  TelemetryReply,
  TelemetrySeriesReply,
} from '../../protocol/telemetry.js';
import { TelemetryBatcher } from '../../registry/telemetry-batcher.js';
import { authenticateDevice } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { mustSeeDevice } from '../scope.js';

/** Points one series request answers at most. */
const MAX_POINTS = 10_000;
/** A report with 10,000 packages stays under this. */
const REPORT_BODY_LIMIT = 2 * 1024 * 1024;

const retentionOf = (c: ServerContext): TelemetryRetention =>
  c.telemetryRetention ?? DEFAULT_TELEMETRY_RETENTION;

export const deviceTelemetryApi =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const batcher = new TelemetryBatcher(c.store, c.clock, retentionOf(c).minIntervalMs);
    app.post(
      '/telemetry',
      {
        bodyLimit: REPORT_BODY_LIMIT,
        schema: {
          summary:
            'Report telemetry (numeric metrics) and, now and then, the inventory; at most one report a minute',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          body: TelemetryBody,
          response: withErrors({ 200: TelemetryReply }),
        },
      },
      async (request, reply) => {
        const deviceId = await authenticateDevice(c, request);
        const outcome = await batcher.submit(deviceId, request.body);
        const retryAfter = Math.ceil(outcome.retryAfterMs / 1000);
        if (!outcome.accepted) {
          reply.header('retry-after', String(retryAfter));
          throw new FleetError(
            'RATE_LIMITED',
            `too many telemetry reports; retry in ${retryAfter} s (Retry-After)`,
          );
        }
        return { accepted: true, retry_after: Math.ceil(retentionOf(c).minIntervalMs / 1000) };
      },
    );
  };

export const telemetryRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/devices/:id/telemetry',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: "A device's telemetry: its latest values and its series, raw (48 h) or hourly (90 days)",
          tags: ['devices'],
          params: DeviceParams,
          querystring: Type.Object(
            {
              since: Type.Optional(
                Type.String({
                  maxLength: 16,
                  description: 'How far back (24h, 7d); default 24h raw, 7d hourly',
                }),
              ),
              resolution: Type.Optional(
                Type.Union([Type.Literal('raw'), Type.Literal('hourly')], { default: 'raw' }),
              ),
              metric: Type.Optional(Type.String({ pattern: METRIC_NAME })),
            },
            { additionalProperties: false },
          ),
          response: withErrors({ 200: TelemetrySeriesReply }),
        },
      },
      async (request) => {
        const id = request.params.id;
        const q = request.query;
        const resolution = q.resolution ?? 'raw';
        const retention = retentionOf(c);
        const keptMs = resolution === 'raw' ? retention.rawMs : retention.hourlyMs;
        const sinceMs =
          q.since === undefined
            ? resolution === 'raw'
              ? 24 * 3_600_000
              : 7 * 86_400_000
            : parseDuration(q.since, 'since', keptMs);
        await mustSeeDevice(c, request, id);
        const ctx = timeContext(c);
        if (!(await c.store.getDevice(id, ctx)))
          throw new FleetError('DEVICE_NOT_FOUND', `device ${id} does not exist`);
        const [latest, series] = await Promise.all([
          c.store.telemetry.latest(id),
          c.store.telemetry.series(id, {
            resolution,
            since: ctx.now - sinceMs,
            until: ctx.now + 1,
            ...(q.metric === undefined ? {} : { names: [q.metric] }),
            limit: MAX_POINTS,
          }),
        ]);
        const iso = (ms: number) => new Date(ms).toISOString();
        return {
          device_id: id,
          resolution,
          latest: latest.map((l) => ({ name: l.name, value: l.value, at: iso(l.at) })),
          series: series.map((s) => ({
            name: s.name,
            points: s.points.map((p) => ({ ...p, at: iso(p.at) })),
          })),
        };
      },
    );

    app.get(
      '/devices/:id/inventory',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: "A device's latest inventory: OS, kernel, installed packages, network interfaces",
          tags: ['devices'],
          params: DeviceParams,
          response: withErrors({ 200: InventoryReply }),
        },
      },
      async (request) => {
        const id = request.params.id;
        await mustSeeDevice(c, request, id);
        if (!(await c.store.getDevice(id, timeContext(c)))) {
          throw new FleetError('DEVICE_NOT_FOUND', `device ${id} does not exist`);
        }
        const inventory = await c.store.telemetry.inventory(id);
        if (!inventory) throw new FleetError('NOT_FOUND', `device ${id} has not reported an inventory yet`);
        return inventoryJson(id, inventory);
      },
    );
  };
