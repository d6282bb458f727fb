/** Request and response schemas: one source for validation, serialisation and the OpenAPI document. */
import { type Static, Type } from 'typebox';
import { DEVICE_STATUSES, type Heartbeat } from '../core/device.js';
import { DURATION_LIMITS, MAX_DURATION_TEXT } from '../core/duration.js';
import { DEVICE_SORT_FIELDS } from '../store/store.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

export const ErrorReply = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code, e.g. FILTER_SYNTAX' }),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorReply' },
);

const errors = {
  400: Type.Ref('ErrorReply'),
  401: Type.Ref('ErrorReply'),
  403: Type.Ref('ErrorReply'),
  404: Type.Ref('ErrorReply'),
  409: Type.Ref('ErrorReply'),
  413: Type.Ref('ErrorReply'),
};
export const withErrors = <T extends object>(ok: T) => ({ ...ok, ...errors });

/**
 * Integer bounds that fit their columns: an int4 column (PostgreSQL `integer`) holds up to 2^31-1; an event id
 * is a bigint, but JSON numbers are exact only up to 2^53-1, so cursors stop there.
 */
export const INT4_MAX = 2_147_483_647;
export const EVENT_ID_MAX = Number.MAX_SAFE_INTEGER;
export const EventCursor = (description: string, minimum = 0) =>
  Type.Integer({ minimum, maximum: EVENT_ID_MAX, description });
/**
 * A duration in a query or body (e.g. 7d), with the bound the route enforces stated for the reader. Its form
 * is checked by parseDuration in the route, whose message says what a duration looks like.
 */
export const DurationText = (description: string, maxMs: number) =>
  Type.String({
    maxLength: MAX_DURATION_TEXT,
    description: `${description}; at most ${maxMs / 86_400_000}d`,
  });

// A record's key schema becomes a patternProperties key: without additionalProperties false, a key that does
// not match the pattern would not be checked at all.
export const Tags = Type.Record(
  Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' }),
  Type.String({ maxLength: 256 }),
  {
    additionalProperties: false,
    maxProperties: 64,
    description:
      'Tag key (letters, digits, _ . : -, at most 64) → value (at most 256 characters); at most 64 tags',
  },
);
export const DeviceId = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$',
  description: 'Device id',
});

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
    telemetry: Type.Object({
      lat: Nullable(Type.Number()),
      lon: Nullable(Type.Number()),
      battery: Nullable(Type.Number()),
      signal_strength: Nullable(Type.Number()),
      device_time: Nullable(Type.String()),
      metrics: Type.Record(Type.String(), Type.Unknown()),
    }),
  },
  { $id: 'Device' },
);
export type DeviceJson = Static<typeof DeviceJson>;

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
        },
        { additionalProperties: false },
      ),
      { maxItems: 50_000 },
    ),
  },
  { additionalProperties: false },
);

export const HeartbeatBody = Type.Object(
  {
    device_id: DeviceId,
    firmware_version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    timestamp: Type.Optional(
      Type.String({ maxLength: 64, description: "The device's own clock; never trusted" }),
    ),
    location: Type.Optional(
      Type.Object(
        {
          lat: Type.Number({ minimum: -90, maximum: 90 }),
          lon: Type.Number({ minimum: -180, maximum: 180 }),
        },
        { additionalProperties: false },
      ),
    ),
    battery: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    signal_strength: Type.Optional(Type.Number({ minimum: -200, maximum: 50 })),
    metrics: Type.Optional(
      Type.Record(
        Type.String({ pattern: '^.{1,64}$' }),
        Type.Union([Type.Number(), Type.String({ maxLength: 256 }), Type.Boolean()]),
        {
          additionalProperties: false,
          maxProperties: 64,
          description: 'At most 64 metrics; names of 1 to 64 characters on one line',
        },
      ),
    ),
  },
  { additionalProperties: false },
);

/** A validated heartbeat body as the core's Heartbeat: one mapping for HTTP and MQTT alike. */
export function heartbeatFromBody(deviceId: string, body: Static<typeof HeartbeatBody>): Heartbeat {
  return {
    deviceId,
    ...(body.firmware_version !== undefined ? { firmwareVersion: body.firmware_version } : {}),
    ...(body.timestamp !== undefined ? { timestamp: body.timestamp } : {}),
    ...(body.location !== undefined ? { location: body.location } : {}),
    ...(body.battery !== undefined ? { battery: body.battery } : {}),
    ...(body.signal_strength !== undefined ? { signalStrength: body.signal_strength } : {}),
    ...(body.metrics !== undefined ? { metrics: body.metrics } : {}),
  };
}

export const PendingUpdate = Type.Object({
  id: Type.String(),
  rollout_id: Nullable(Type.String()),
  state: Type.String(),
  last_seq: Type.Integer({ description: 'The last report sequence number the server accepted' }),
  action: Type.Union([Type.Literal('install'), Type.Literal('download_only'), Type.Literal('switch')]),
  manifest: Type.String({
    description: 'The signed manifest: verify the signature over these exact bytes, then parse',
  }),
  signature: Type.String({ description: 'Base64 Ed25519 signature of the manifest' }),
  download_url: Type.String(),
  retry_after: Nullable(Type.Integer({ description: 'Seconds to wait before downloading (held back)' })),
  soft: Type.Boolean({ description: 'The device may defer installing (its consent hook decides)' }),
});

export const HeartbeatReply = Type.Object({
  pending_updates: Type.Array(PendingUpdate),
  next_heartbeat: Type.Integer({ description: 'Seconds until the device should send its next heartbeat' }),
});

export const EnrollBody = Type.Object(
  {
    enrollment_token: Type.String({ minLength: 1, maxLength: 256 }),
    device_id: DeviceId,
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    hardware_type: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    firmware_version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    timezone: Type.Optional(Type.String({ maxLength: 64 })),
    tags: Type.Optional(Tags),
  },
  { additionalProperties: false },
);

export const CredentialReply = Type.Object({
  device_id: Type.String(),
  credential: Type.String({ description: 'Shown once; the server keeps only its hash' }),
});

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

export const StatusReportBody = Type.Object(
  {
    seq: Type.Integer({
      minimum: 1,
      maximum: INT4_MAX,
      description: 'Per-update sequence number, incremented by the device (at most 2^31-1)',
    }),
    state: Type.Union([
      Type.Literal('notified'),
      Type.Literal('downloading'),
      Type.Literal('installing'),
      Type.Literal('verifying'),
      Type.Literal('succeeded'),
      Type.Literal('failed'),
      Type.Literal('rolled_back'),
    ]),
    progress: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 100 }))),
    error: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
  },
  { additionalProperties: false },
);

export const StatusReportReply = Type.Object({ accepted: Type.Boolean(), state: Type.String() });
export const UpdateParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
export const Sha256Params = Type.Object({ sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) });

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
