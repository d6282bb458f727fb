/**
 * The operator API's messages about devices, the fleet, enrollment and events: request and response schemas
 * (one source for validation, serialisation, the OpenAPI document, the CLI and the dashboard) and the
 * mapping of core objects to their JSON (snake_case, ISO-8601 UTC instants).
 */
import { type Static, Type } from 'typebox';
import type { DeviceAdmission } from '../core/admission.js';
import { DEVICE_SORT_FIELDS, DEVICE_STATUSES, type Device } from '../core/device.js';
import { DURATION_LIMITS } from '../core/duration.js';
import { DeviceId, DurationText, EventCursor, INT4_MAX, iso, Nullable, Tags } from './common.js';

export const DeviceJson = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    status: Type.Union([
      Type.Literal('unknown'),
      Type.Literal('online'),
      Type.Literal('offline'),
      Type.Literal('abandoned'),
      Type.Literal('decommissioned'),
    ]),
    firmware_version: Nullable(Type.String()),
    hardware_type: Nullable(Type.String()),
    location: Nullable(Type.String()),
    timezone: Nullable(Type.String()),
    customer: Nullable(Type.String()),
    tags: Type.Record(Type.String(), Type.String()),
    last_seen: Nullable(Type.String({ format: 'date-time' })),
    created_at: Type.String({ format: 'date-time' }),
    decommissioned_at: Nullable(Type.String({ format: 'date-time' })),
    enrolled: Type.Boolean({ description: 'Whether the device holds a credential' }),
    admission: Type.Union([Type.Literal('accepted'), Type.Literal('pending'), Type.Literal('rejected')], {
      description: 'accepted: in the fleet; pending: waiting for approval; rejected (docs/enrollment.md)',
    }),
    telemetry: Type.Object({
      lat: Nullable(Type.Number()),
      lon: Nullable(Type.Number()),
      battery: Nullable(Type.Number()),
      signal_strength: Nullable(Type.Number()),
      device_time: Nullable(Type.String()),
      metrics: Type.Record(Type.String(), Type.Unknown()),
    }),
    config: Type.Optional(
      Type.Union(
        [
          Type.Object({
            desired_version: Type.String(),
            applied_version: Nullable(Type.String()),
            drift: Type.Boolean({
              description: 'Something is desired and the device has not applied exactly it',
            }),
          }),
          Type.Null(),
        ],
        {
          description:
            'Its remote configuration as last resolved (docs/configuration.md); null when no document applies. Only the device reads and listing carry it',
        },
      ),
    ),
    connectivity_class: Type.Optional(
      Type.Object(
        {
          name: Type.String(),
          heartbeat_interval_sec: Type.Integer(),
          offline_after_sec: Type.Integer(),
          abandoned_after_sec: Type.Integer(),
        },
        {
          description:
            'The connectivity class the device is in, whose thresholds its status uses (docs/connectivity.md); absent: the server-wide ones',
        },
      ),
    ),
  },
  { $id: 'Device' },
);
export type DeviceJson = Static<typeof DeviceJson>;

/** A page of a device listing; its devices refer to the shared `Device` schema (added to the app by id). */
export const DevicePage = Type.Object({
  devices: Type.Array(Type.Ref('Device')),
  next_cursor: Nullable(Type.String()),
});
export type DevicePageJson = { devices: DeviceJson[]; next_cursor: Static<typeof DevicePage>['next_cursor'] };

export const DeviceListQuery = Type.Object(
  {
    filter: Type.Optional(
      Type.String({ maxLength: 4096, description: 'Filter expression, e.g. status=online' }),
    ),
    sort: Type.Optional(Type.Union(DEVICE_SORT_FIELDS.map((f) => Type.Literal(f)))),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
    cursor: Type.Optional(Type.String({ maxLength: 1024 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);

export const FilterQuery = Type.Object(
  { filter: Type.Optional(Type.String({ maxLength: 4096 })) },
  { additionalProperties: false },
);

export const DeviceParams = Type.Object({ id: DeviceId });

/** POST /devices/:id/revoke-certificates: how many live certificates of the device were revoked. */
export const RevokedCertificates = Type.Object({ device_id: Type.String(), revoked: Type.Integer() });
export type RevokedCertificatesJson = Static<typeof RevokedCertificates>;

/** GET /devices/:id/certificates: a device's certificates, newest first (never a key: devices keep theirs). */
export const DeviceCertificateJson = Type.Object({
  serial: Type.String({ description: 'Lowercase hex' }),
  fingerprint: Type.String({ description: 'SHA-256 of the DER, lowercase hex' }),
  issuer: Type.String({ description: '`fleetd` (the FleetD CA) or a trusted factory CA' }),
  not_before: Type.String({ format: 'date-time' }),
  not_after: Type.String({ format: 'date-time' }),
  issued_at: Type.String({ format: 'date-time' }),
  revoked_at: Nullable(Type.String({ format: 'date-time' })),
});
export type DeviceCertificateJson = Static<typeof DeviceCertificateJson>;
export const DeviceCertificateList = Type.Object({ certificates: Type.Array(DeviceCertificateJson) });
export type DeviceCertificateListJson = Static<typeof DeviceCertificateList>;

export const ImportBody = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 4096 })),
    now: Type.Optional(
      Type.String({
        maxLength: 64,
        description: 'The instant the file was written at; timestamps are shifted so it maps to now',
      }),
    ),
    devices: Type.Array(
      Type.Object(
        {
          id: DeviceId,
          name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
          firmware_version: Type.Optional(Nullable(Type.String({ maxLength: 64 }))),
          hardware_type: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
          last_seen: Type.Optional(Nullable(Type.String({ maxLength: 64 }))),
          location: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
          timezone: Type.Optional(Nullable(Type.String({ maxLength: 64 }))),
          customer: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
          tags: Type.Optional(Tags),
          preauthorized: Type.Optional(
            Type.Boolean({
              description:
                'Joins without a token at its first request (--enrollment approve), no approval needed',
            }),
          ),
        },
        { additionalProperties: false },
      ),
      { maxItems: 50_000 },
    ),
  },
  { additionalProperties: false },
);

export const EnrollmentCreateBody = Type.Object(
  {
    uses: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: INT4_MAX,
        description: 'How many devices may enroll with it (default unlimited)',
      }),
    ),
    expires_in: Type.Optional(
      DurationText('Duration such as 7d or 12h (default 7d, at most 365d)', DURATION_LIMITS.tokenExpiry),
    ),
    tags: Type.Optional(Tags),
    claim: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          'Filter naming the pre-registered (imported) devices this token may claim; without it the token only registers new device ids',
      }),
    ),
  },
  { additionalProperties: false },
);

export const EnrollmentTokenReply = Type.Object({
  id: Type.String(),
  token: Type.String({ description: 'Shown once; the server keeps only its hash' }),
  uses_left: Nullable(Type.Integer()),
  expires_at: Nullable(Type.String({ format: 'date-time' })),
  tags: Type.Record(Type.String(), Type.String()),
  claim: Nullable(Type.String()),
});

/** An enrollment token in a listing: never its secret. */
export const EnrollmentTokenJson = Type.Object({
  id: Type.String(),
  uses_left: Nullable(Type.Integer()),
  expires_at: Nullable(Type.String({ format: 'date-time' })),
  tags: Type.Record(Type.String(), Type.String()),
  claim: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  revoked_at: Nullable(Type.String({ format: 'date-time' })),
  state: Type.Union([
    Type.Literal('usable'),
    Type.Literal('expired'),
    Type.Literal('used_up'),
    Type.Literal('revoked'),
  ]),
});

export const EnrollmentTokenParams = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) },
  { additionalProperties: false },
);

export const StatsQuery = Type.Object(
  {
    filter: Type.Optional(Type.String({ maxLength: 4096 })),
    tag: Type.Optional(
      Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16, description: 'Tag keys to break down by' }),
    ),
  },
  { additionalProperties: false },
);

const Counts = Type.Record(Type.String(), Type.Integer());
export const StatsReply = Type.Object({
  total: Type.Integer(),
  by_status: Type.Object(Object.fromEntries(DEVICE_STATUSES.map((s) => [s, Type.Integer()]))),
  firmware: Type.Array(Type.Object({ version: Nullable(Type.String()), count: Type.Integer() })),
  hardware: Type.Array(Type.Object({ hardware_type: Nullable(Type.String()), count: Type.Integer() })),
  tags: Type.Record(Type.String(), Counts),
  silent: Type.Object({ over_24h: Type.Integer(), over_30d: Type.Integer() }),
  at: Type.String({ format: 'date-time' }),
});

export const EventsQuery = Type.Object(
  {
    after: Type.Optional(EventCursor('Return events with a larger id (the cursor)')),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    device: Type.Optional(Type.String({ maxLength: 128 })),
    rollout: Type.Optional(Type.String({ maxLength: 128 })),
    type: Type.Optional(Type.String({ maxLength: 64, description: 'Event type prefix, e.g. device.' })),
  },
  { additionalProperties: false },
);

export const EventJson = Type.Object({
  id: Type.Integer(),
  at: Type.String({ format: 'date-time' }),
  type: Type.String(),
  device_id: Nullable(Type.String()),
  rollout_id: Nullable(Type.String()),
  actor: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  data: Type.Record(Type.String(), Type.Unknown()),
});

export const HistoryQuery = Type.Object(
  {
    since: Type.Optional(DurationText('How far back, e.g. 24h or 7d (default 24h)', DURATION_LIMITS.history)),
  },
  { additionalProperties: false },
);

export const HistoryReply = Type.Object({
  snapshots: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time' }),
      total: Type.Integer(),
      by_status: Type.Object(Object.fromEntries(DEVICE_STATUSES.map((s) => [s, Type.Integer()]))),
    }),
  ),
});
export type HistoryReplyJson = Static<typeof HistoryReply>;
export type ImportJson = Static<typeof ImportBody>;
export type StatsJson = Static<typeof StatsReply>;
export type EventJson = Static<typeof EventJson>;
export type EnrollmentTokenJson = Static<typeof EnrollmentTokenJson>;
export type EnrollmentTokenReplyJson = Static<typeof EnrollmentTokenReply>;

/** The core's list (DEVICE_ADMISSIONS) spelled out for the schema: this fails to compile if they differ. */
const admissionsAgree: [DeviceAdmission] extends [DeviceJson['admission']]
  ? [DeviceJson['admission']] extends [DeviceAdmission]
    ? true
    : false
  : false = true;
void admissionsAgree;

/** What the device JSON shows of a device's configuration state (the store's DeviceConfigState is one). */
export interface DeviceConfigSource {
  desired: { version: string } | null;
  applied: { version: string } | null;
  drift: boolean;
}

/**
 * With `config` (a device read or listing), its configuration is shown: undefined there is a device with no
 * configuration row, so no document applies.
 */
export function deviceJson(d: Device, config?: { of: DeviceConfigSource | undefined }): DeviceJson {
  const json: DeviceJson = {
    id: d.id,
    name: d.name,
    status: d.status,
    firmware_version: d.firmwareVersion,
    hardware_type: d.hardwareType,
    location: d.location,
    timezone: d.timezone,
    customer: d.customer,
    tags: d.tags,
    last_seen: iso(d.lastSeen),
    created_at: new Date(d.createdAt).toISOString(),
    decommissioned_at: iso(d.decommissionedAt),
    enrolled: d.hasCredential,
    admission: d.admission,
    telemetry: {
      lat: d.telemetry.geo?.lat ?? null,
      lon: d.telemetry.geo?.lon ?? null,
      battery: d.telemetry.battery,
      signal_strength: d.telemetry.signalStrength,
      device_time: d.telemetry.deviceTime,
      metrics: d.telemetry.metrics,
    },
  };
  if (d.connectivity) {
    json.connectivity_class = {
      name: d.connectivity.className,
      heartbeat_interval_sec: Math.round(d.connectivity.heartbeatIntervalMs / 1000),
      offline_after_sec: Math.round(d.connectivity.offlineAfterMs / 1000),
      abandoned_after_sec: Math.round(d.connectivity.abandonedAfterMs / 1000),
    };
  }
  if (config === undefined) return json;
  const c = config.of;
  json.config =
    c?.desired == null
      ? null
      : { desired_version: c.desired.version, applied_version: c.applied?.version ?? null, drift: c.drift };
  return json;
}

/**
 * What an event's JSON is made from: the stored event's fields. The store's StoredEvent is one; the protocol
 * names them so that it does not depend on the store.
 */
export interface EventSource {
  id: number;
  at: number;
  type: string;
  deviceId: string | null;
  rolloutId: string | null;
  actor: string | null;
  reason: string | null;
  data: Record<string, unknown>;
}

/** An event as the API, the event stream and webhooks all send it. */
export function eventJson(e: EventSource): EventJson {
  return {
    id: e.id,
    at: new Date(e.at).toISOString(),
    type: e.type,
    device_id: e.deviceId,
    rollout_id: e.rolloutId,
    actor: e.actor,
    reason: e.reason,
    data: e.data,
  };
}
