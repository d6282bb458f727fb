/**
 * Telemetry and inventory (docs/telemetry.md): the report a device sends (HTTP `POST /api/device/v1/telemetry`,
 * MQTT `…/{id}/telemetry`) and what the operator API answers for a device's series and inventory.
 */
import { type Static, Type } from 'typebox';
import type { DeviceInventory } from '../core/telemetry.js';

/** Metric names: the filter language's `telemetry.<name>` takes the same characters. */
export const METRIC_NAME = '^[A-Za-z0-9_.:-]{1,64}$';
export const MAX_METRICS = 64;
export const MAX_PACKAGES = 10_000;
export const MAX_INTERFACES = 64;

const Interface = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    mac: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    addresses: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 }),
  },
  { additionalProperties: false },
);

export const InventoryJson = Type.Object(
  {
    os: Type.Union([Type.String({ maxLength: 128 }), Type.Null()], {
      description: 'PRETTY_NAME of /etc/os-release',
    }),
    kernel: Type.Union([Type.String({ maxLength: 128 }), Type.Null()], { description: 'uname -r' }),
    packages: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:+-]+$' }),
          version: Type.String({ minLength: 1, maxLength: 128 }),
        },
        { additionalProperties: false },
      ),
      { maxItems: MAX_PACKAGES },
    ),
    interfaces: Type.Array(Interface, { maxItems: MAX_INTERFACES }),
  },
  { additionalProperties: false },
);
export type InventoryReportJson = Static<typeof InventoryJson>;

export const TelemetryBody = Type.Object(
  {
    metrics: Type.Record(Type.String({ pattern: METRIC_NAME }), Type.Number(), {
      additionalProperties: false,
      maxProperties: MAX_METRICS,
      description: `At most ${MAX_METRICS} numeric metrics, names of letters, digits and _ . : -`,
    }),
    inventory: Type.Optional(InventoryJson),
  },
  { additionalProperties: false },
);
export type TelemetryJson = Static<typeof TelemetryBody>;

export const TelemetryReply = Type.Object({
  accepted: Type.Boolean(),
  retry_after: Type.Integer({ description: 'Seconds until the next report is accepted' }),
});
export type TelemetryReplyJson = Static<typeof TelemetryReply>;

const Point = Type.Object({
  at: Type.String({ format: 'date-time' }),
  count: Type.Integer(),
  min: Type.Number(),
  max: Type.Number(),
  avg: Type.Number(),
});

export const TelemetrySeriesReply = Type.Object({
  device_id: Type.String(),
  resolution: Type.Union([Type.Literal('raw'), Type.Literal('hourly')]),
  latest: Type.Array(
    Type.Object({ name: Type.String(), value: Type.Number(), at: Type.String({ format: 'date-time' }) }),
  ),
  series: Type.Array(Type.Object({ name: Type.String(), points: Type.Array(Point) })),
});
export type TelemetrySeriesJson = Static<typeof TelemetrySeriesReply>;

export const InventoryReply = Type.Object({
  device_id: Type.String(),
  reported_at: Type.String({ format: 'date-time' }),
  ...InventoryJson.properties,
});
export type InventoryJsonReply = Static<typeof InventoryReply>;

export function inventoryJson(deviceId: string, inventory: DeviceInventory): InventoryJsonReply {
  return {
    device_id: deviceId,
    reported_at: new Date(inventory.reportedAt).toISOString(),
    os: inventory.os,
    kernel: inventory.kernel,
    packages: inventory.packages,
    interfaces: inventory.interfaces,
  };
}
