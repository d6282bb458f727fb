/** What route handlers are given: the store, the clock and the services built on them. */
import type { KeyObject } from 'node:crypto';
import type { FsBlobStore } from '../artifacts/blob-store.js';
import type { DeltaBuilder } from '../artifacts/delta-builder.js';
import type { DirectorRepository } from '../artifacts/director/director-repository.js';
import type { TufPublisher } from '../artifacts/tuf/tuf-publisher.js';
import type { Clock } from '../core/clock.js';
import type { StatusThresholds } from '../core/device.js';
import type { TelemetryRetention } from '../core/telemetry.js';
import type { PacingTime } from '../core/token-bucket.js';
import type { AlertEvaluator } from '../engine/alert-evaluator.js';
import type { HeartbeatBatcher } from '../registry/heartbeat-batcher.js';
import type { ReportBatcher } from '../registry/report-batcher.js';
import type { Store, TimeContext } from '../store/store.js';
import type { DeliveryKey } from './delivery/delivery-key.js';
import type { DeviceCertificates } from './device-certificates.js';
import type { EgressLimit } from './egress-limit.js';
import type { FactoryCas } from './factory-cas.js';
import type { Keyring } from './keyring.js';
import type { ServerMetrics } from './metrics/server-metrics.js';
import type { SignedArtifactUrls } from './signed-artifact-urls.js';

/** How devices may authenticate: a client certificate or a bearer credential (`any`), or certificates only. */
export type DeviceAuthMode = 'any' | 'mtls';

export interface ServerContext {
  store: Store;
  clock: Clock;
  thresholds: StatusThresholds;
  heartbeats: HeartbeatBatcher;
  reports: ReportBatcher;
  /** Seconds a device should wait before its next heartbeat. */
  heartbeatIntervalSec: number;
  blobs: FsBlobStore;
  keyring: Keyring;
  /** Largest artifact accepted, in bytes. */
  maxArtifactBytes: number;
  /** Leave sending artifact bytes to a web server in front (X-Accel-Redirect to this internal prefix). */
  artifactOffload?: string | undefined;
  /** Webhooks may target loopback, private and link-local addresses (`--webhook-allow-private`). */
  webhookAllowPrivate?: boolean | undefined;
  /** Device certificates: issued from the FleetD CA, and its CRL. */
  certificates: DeviceCertificates;
  /** `mtls`: bearer device credentials and enrollment without a CSR are refused (`--device-auth mtls`). */
  deviceAuth: DeviceAuthMode;
  /** `approve`: a device asking to join without a token waits for an operator (`--enrollment approve`). */
  enrollment: EnrollmentMode;
  /** Trusted factory CAs: their device certificates register their device on first contact. */
  factoryCas: FactoryCas;
  /** Prometheus metrics (GET /metrics, docs/monitoring.md). */
  metrics?: ServerMetrics | undefined;
  /** The hash of the dedicated metrics token (`--metrics-token-file`); an admin token is accepted too. */
  metricsTokenHash?: string | undefined;
  /** The alert rules' evaluator, when the server has an alert rules file (docs/alerts.md). */
  alerts?: AlertEvaluator | undefined;
  /** Builds binary deltas in the background (docs/delta-updates.md); undefined when turned off. */
  deltas?: DeltaBuilder | undefined;
  /** The hawkBit tenant of the DDI API's paths (`--ddi-tenant`; default `DEFAULT`). */
  ddiTenant?: string | undefined;
  /** The TUF repository and its publisher; undefined when no TUF root is installed (docs/signing.md). */
  tuf?: TufPublisher | undefined;
  /** The director (per-device targets signed by its own keys); undefined when no director root is installed. */
  director?: DirectorRepository | undefined;
  /** The key Mender device tokens and download links are signed with (docs/clients/mender.md); the API is off without it. */
  menderTokenKey?: Uint8Array | undefined;
  /** Public keys a signed Mender artifact must verify with (`--mender-artifact-key`). */
  menderArtifactKeys?: readonly KeyObject[] | undefined;
  /** The key the server signs in with on agentless SSH devices (docs/agentless.md). */
  deliveryKey: DeliveryKey;
  /** Signed, expiring artifact links on a cache's origin (docs/serving-artifacts.md); off when unset. */
  signedUrls?: SignedArtifactUrls | undefined;
  /** The fleet-wide egress cap on artifact bytes (docs/bandwidth.md); none when unset. */
  egress?: EgressLimit | undefined;
  /** The time per-download limits are paced by (docs/bandwidth.md): real when unset, virtual in tests. */
  pacing?: PacingTime | undefined;
  /** How long telemetry is kept and how often a device may report (docs/telemetry.md); defaults when unset. */
  telemetryRetention?: TelemetryRetention | undefined;
}

/** `token`: enrollment needs a token; `approve`: a tokenless request joins the approval queue (docs/enrollment.md). */
export type EnrollmentMode = 'token' | 'approve';

export const timeContext = (c: ServerContext): TimeContext => ({
  now: c.clock.now(),
  thresholds: c.thresholds,
});
