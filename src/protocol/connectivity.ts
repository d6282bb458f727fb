/** Connectivity classes' operator messages (docs/connectivity.md): interval and thresholds per class of devices. */
import { type Static, Type } from 'typebox';
import type { StoredConnectivityClass } from '../core/connectivity.js';
import { durationBound } from '../core/duration.js';
import { DurationText, iso, Nullable } from './common.js';

const MAX_MS = 366 * 86_400_000;

export const ConnectivityClassName = Type.String({
  pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
  description: 'Class name: a-z, 0-9, . _ - (at most 63), a letter or digit first',
});
export const ConnectivityClassParams = Type.Object({ name: ConnectivityClassName });

const Text = (description: string, maxLength: number) =>
  Type.String({ minLength: 1, maxLength, description });

export const ConnectivityMatchJson = Type.Union(
  [
    Type.Object({ hardware: Text('Devices of this hardware type', 256) }, { additionalProperties: false }),
    Type.Object(
      {
        tag: Type.Object(
          { key: Text('Tag key', 128), value: Text('Tag value', 256) },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      { group: Text('Devices of this group (static or dynamic)', 64) },
      { additionalProperties: false },
    ),
  ],
  { description: 'Exactly one of hardware, tag or group' },
);

export const ConnectivityClassBody = Type.Object(
  {
    match: ConnectivityMatchJson,
    heartbeat_interval: DurationText('How often the devices are asked to heartbeat (10s at least)', MAX_MS),
    offline_after: DurationText(
      'Silence after which a device is offline; longer than heartbeat_interval',
      MAX_MS,
    ),
    abandoned_after: DurationText(
      'Silence after which a device is abandoned; longer than offline_after',
      MAX_MS,
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: -1_000_000,
        maximum: 1_000_000,
        description:
          'Higher wins when a device matches several classes (default 0; then group > tag > hardware)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ConnectivityClassBody = Static<typeof ConnectivityClassBody>;

export const ConnectivityClassJson = Type.Object({
  name: Type.String(),
  match: ConnectivityMatchJson,
  heartbeat_interval: Type.String(),
  offline_after: Type.String(),
  abandoned_after: Type.String(),
  heartbeat_interval_sec: Type.Integer(),
  offline_after_sec: Type.Integer(),
  abandoned_after_sec: Type.Integer(),
  priority: Type.Integer(),
  device_count: Type.Integer({ description: 'Devices in the class now' }),
  updated_by: Nullable(Type.String()),
  updated_at: Type.String(),
});

export const ConnectivityClassList = Type.Object({
  classes: Type.Array(ConnectivityClassJson, {
    description: 'In precedence order: a device is in the first it matches',
  }),
});

export function connectivityClassJson(c: StoredConnectivityClass): Static<typeof ConnectivityClassJson> {
  const m = c.match;
  return {
    name: c.name,
    match:
      m.kind === 'hardware'
        ? { hardware: m.hardware }
        : m.kind === 'tag'
          ? { tag: { key: m.key, value: m.value } }
          : { group: m.group },
    heartbeat_interval: durationBound(c.heartbeatIntervalMs),
    offline_after: durationBound(c.offlineAfterMs),
    abandoned_after: durationBound(c.abandonedAfterMs),
    heartbeat_interval_sec: Math.round(c.heartbeatIntervalMs / 1000),
    offline_after_sec: Math.round(c.offlineAfterMs / 1000),
    abandoned_after_sec: Math.round(c.abandonedAfterMs / 1000),
    priority: c.priority,
    device_count: c.deviceCount,
    updated_by: c.updatedBy,
    updated_at: iso(c.updatedAt) ?? '',
  };
}
