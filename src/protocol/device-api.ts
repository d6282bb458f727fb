/**
 * The device protocol (docs/device-protocol.md): enrollment, heartbeat with its update offers, and status
 * reports, as HTTP bodies. MQTT carries the same bodies (mqtt.ts adds only what a broker needs); the agent
 * and the simulator speak them, the server validates and answers with them.
 */
import { type Static, Type } from 'typebox';
import type { Heartbeat } from '../core/device.js';
import type { DeviceReportedState } from '../core/update-state.js';
import { DeviceCommand } from './commands.js';
import { DeviceId, INT4_MAX, Nullable, Tags } from './common.js';
import { DeviceConfigOffer } from './config.js';
import { DeltaOffer } from './deltas.js';

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
    health: Type.Optional(
      Type.Object(
        {
          reboots: Type.Optional(Type.Integer({ minimum: 0, maximum: INT4_MAX })),
          app_crashes: Type.Optional(Type.Integer({ minimum: 0, maximum: INT4_MAX })),
        },
        {
          additionalProperties: false,
          description: 'Counted since the running release was installed (docs/health-gates.md)',
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type HeartbeatJson = Static<typeof HeartbeatBody>;

/** A validated heartbeat body as the core's Heartbeat: one mapping for HTTP and MQTT alike. */
export function heartbeatFromBody(deviceId: string, body: HeartbeatJson): Heartbeat {
  return {
    deviceId,
    ...(body.firmware_version !== undefined ? { firmwareVersion: body.firmware_version } : {}),
    ...(body.timestamp !== undefined ? { timestamp: body.timestamp } : {}),
    ...(body.location !== undefined ? { location: body.location } : {}),
    ...(body.battery !== undefined ? { battery: body.battery } : {}),
    ...(body.signal_strength !== undefined ? { signalStrength: body.signal_strength } : {}),
    ...(body.metrics !== undefined ? { metrics: body.metrics } : {}),
    ...(body.health !== undefined
      ? {
          health: {
            ...(body.health.reboots !== undefined ? { reboots: body.health.reboots } : {}),
            ...(body.health.app_crashes !== undefined ? { appCrashes: body.health.app_crashes } : {}),
          },
        }
      : {}),
  };
}

export const UpdateAction = Type.Union([
  Type.Literal('install'),
  Type.Literal('download_only'),
  Type.Literal('switch'),
]);

export const PendingUpdate = Type.Object({
  id: Type.String(),
  rollout_id: Nullable(Type.String()),
  state: Type.String(),
  last_seq: Type.Integer({ description: 'The last report sequence number the server accepted' }),
  action: UpdateAction,
  manifest: Type.String({
    description: 'The signed manifest: verify the signature over these exact bytes, then parse',
  }),
  signature: Type.String({ description: 'Base64 Ed25519 signature of the manifest' }),
  download_url: Type.String(),
  retry_after: Nullable(Type.Integer({ description: 'Seconds to wait before downloading (held back)' })),
  soft: Type.Boolean({ description: 'The device may defer installing (its consent hook decides)' }),
  delta: Type.Optional(DeltaOffer),
  hold_reason: Type.Optional(
    Type.String({ description: 'Why the server holds the download back, when retry_after is set' }),
  ),
  download_rate_limit: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'Bytes per second the download may take (docs/bandwidth.md); the server paces to it too',
    }),
  ),
  adopt_tuf: Type.Optional(
    Type.Boolean({
      description:
        'A device without TUF adopts the root of GET /api/device/v1/tuf/migration (signed by the pinned key) for this update and all later ones',
    }),
  ),
});
export type PendingUpdateJson = Static<typeof PendingUpdate>;

/**
 * What an offer's JSON is made from: the fields of the stored update and release it reads. The store's
 * UpdateOffer is one; the protocol names only what it needs so that it does not depend on the store.
 */
export interface OfferSource {
  update: {
    id: string;
    rolloutId: string | null;
    state: string;
    lastSeq: number;
    action: PendingUpdateJson['action'];
  };
  release: { manifest: string; signature: string; sha256: string };
  retryAfterSec: number | null;
  holdReason?: string | undefined;
  soft: boolean;
  downloadRateLimit?: number | undefined;
  adoptTuf?: boolean | undefined;
}

/** One pending update as the device protocol describes it (docs/device-protocol.md). */
export function pendingUpdateJson({
  update,
  release,
  retryAfterSec,
  holdReason,
  soft,
  downloadRateLimit,
  adoptTuf,
}: OfferSource): PendingUpdateJson {
  return {
    id: update.id,
    rollout_id: update.rolloutId,
    state: update.state,
    last_seq: update.lastSeq,
    action: update.action,
    manifest: release.manifest,
    signature: release.signature,
    download_url: `/api/device/v1/artifacts/${release.sha256}`,
    retry_after: retryAfterSec,
    soft,
    ...(holdReason !== undefined ? { hold_reason: holdReason } : {}),
    ...(downloadRateLimit !== undefined ? { download_rate_limit: downloadRateLimit } : {}),
    ...(adoptTuf ? { adopt_tuf: true } : {}),
  };
}

export const HeartbeatReply = Type.Object({
  pending_updates: Type.Array(PendingUpdate),
  commands: Type.Optional(
    Type.Array(DeviceCommand, { description: 'Remote commands for this device (docs/remote-commands.md)' }),
  ),
  config: Type.Optional(DeviceConfigOffer),
  next_heartbeat: Type.Integer({ description: 'Seconds until the device should send its next heartbeat' }),
});
export type HeartbeatReplyJson = Static<typeof HeartbeatReply>;

/**
 * A PKCS#10 certificate request in PEM, its subject CN the device id, its key ECDSA P-256 or Ed25519: the private
 * key never leaves the device.
 */
const CsrPem = Type.String({
  minLength: 1,
  maxLength: 16_384,
  description: 'PEM certificate request (CN = device id)',
});

export const EnrollBody = Type.Object(
  {
    enrollment_token: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'Without one, a server in approval mode queues the device until an operator accepts it',
      }),
    ),
    device_id: DeviceId,
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    hardware_type: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    firmware_version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    timezone: Type.Optional(Type.String({ maxLength: 64 })),
    tags: Type.Optional(Tags),
    csr: Type.Optional(CsrPem),
    request_secret: Type.Optional(
      Type.String({
        minLength: 32,
        maxLength: 256,
        description:
          'Without a token and without a CSR: a random secret the device made and keeps; asking again with it ' +
          'proves the same requester (the server keeps only its hash)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type EnrollJson = Static<typeof EnrollBody>;

export const CredentialReply = Type.Object({
  device_id: Type.String(),
  credential: Type.String({ description: 'Shown once; the server keeps only its hash' }),
});
export type CredentialJson = Static<typeof CredentialReply>;

/** A certificate FleetD issued for a device's CSR, with the CA that signed it (the device trusts that CA). */
const IssuedCertificateFields = {
  certificate: Type.String({ description: 'PEM; the device authenticates with it over mutual TLS' }),
  ca_certificate: Type.String({ description: 'PEM of the FleetD CA that issued it' }),
  expires_at: Type.String({
    format: 'date-time',
    description: 'Renew before this (the agent at two thirds)',
  }),
};

/** Enrollment with a CSR: a certificate instead of a bearer credential. */
export const CertificateEnrollReply = Type.Object({ device_id: Type.String(), ...IssuedCertificateFields });
export type CertificateEnrollJson = Static<typeof CertificateEnrollReply>;

export const EnrollReply = Type.Union([CredentialReply, CertificateEnrollReply]);

/** A tokenless request waiting in the approval queue (HTTP 202): ask again later with the same key or secret. */
export const AdmissionPendingReply = Type.Object({
  device_id: Type.String(),
  admission: Type.Literal('pending'),
  message: Type.String(),
  retry_after: Type.Integer({ description: 'Seconds to wait before asking again' }),
});
export type AdmissionPendingJson = Static<typeof AdmissionPendingReply>;

export const RenewBody = Type.Object({ csr: CsrPem }, { additionalProperties: false });
export type RenewJson = Static<typeof RenewBody>;

export const CertificateReply = Type.Object(IssuedCertificateFields);
export type CertificateJson = Static<typeof CertificateReply>;

export const ReportedState = Type.Union([
  Type.Literal('notified'),
  Type.Literal('downloading'),
  Type.Literal('installing'),
  Type.Literal('verifying'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('rolled_back'),
]);
/** The core's list (DEVICE_REPORTED_STATES) spelled out for the schema: this fails to compile if they differ. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const reportedStatesAgree: Same<Static<typeof ReportedState>, DeviceReportedState> = true;
void reportedStatesAgree;

export const StatusReportBody = Type.Object(
  {
    seq: Type.Integer({
      minimum: 1,
      maximum: INT4_MAX,
      description: 'Per-update sequence number, incremented by the device (at most 2^31-1)',
    }),
    state: ReportedState,
    progress: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 100 }))),
    error: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
  },
  { additionalProperties: false },
);
export type StatusReportJson = Static<typeof StatusReportBody>;

export const StatusReportReply = Type.Object({ accepted: Type.Boolean(), state: Type.String() });
export type StatusReportReplyJson = Static<typeof StatusReportReply>;
export const UpdateParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
export const Sha256Params = Type.Object({ sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) });
