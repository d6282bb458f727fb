/**
 * The storage port. SqlStore (sql-store.ts) provides exactly this on either database's adapter; nothing outside
 * store/ sees SQL. Each mutating method is one transaction that writes its events with it (outbox), so an
 * acknowledged write and its event are never separated by a crash. Over 500 lines because it is the one
 * contract of every store concern (types and interfaces only, no logic), which every caller imports from
 * one place.
 */

import type { AdmissionDecision, DeviceAdmission } from '../core/admission.js';
import type { AuditEntry, AuditRecord, ChainAnchor, ChainVerdict } from '../core/audit/audit-chain.js';
import type { CommandSpec, CommandState } from '../core/command.js';
import type {
  Device,
  DeviceRecord,
  DeviceSortField,
  DeviceStatus,
  Heartbeat,
  StatusThresholds,
} from '../core/device.js';
import type { ErrorCode } from '../core/errors.js';
import type { FilterNode } from '../core/filter/index.js';
import type { ReleaseType } from '../core/manifest.js';
import type { RetryPolicy } from '../core/rollout/dispatch.js';
import type { HealthSample } from '../core/rollout/health-gate.js';
import type { UpdatePurpose } from '../core/rollout/offer.js';
import type { PlanDevice, PlannedTarget } from '../core/rollout/plan.js';
import type { RolloutState } from '../core/rollout/rollout-state.js';
import type { RolloutSpec } from '../core/rollout/spec.js';
import type { WakeCandidate } from '../core/rollout/wake.js';
import type { TagEdit } from '../core/tag-edit.js';
import type { DeviceInventory, TelemetryMetrics, TelemetryRetention } from '../core/telemetry.js';
import type { DeviceReportedState, UpdateState } from '../core/update-state.js';
import type { ConfigRolloutStore } from './config-rollout-store.js';
import type { ConfigStore } from './config-store.js';
import type { ConnectivityStore } from './connectivity-store.js';
import type { DeliveryStore } from './delivery-store.js';
import type { DeltaStore } from './delta-store.js';
import type { DeviceWindowStore } from './device-window-store.js';
import type { DirectorStore } from './director-store.js';
import type { PrincipalStore } from './principals.js';
import type { RateCountStore } from './rate-count-store.js';
import type { SessionStore } from './sessions.js';
import type { ReleaseVariantStore } from './variant-store.js';

export interface TimeContext {
  now: number;
  thresholds: StatusThresholds;
}

/**
 * The context of a write to a rollout. The engine names itself in `leaseHolder`: the write is then refused
 * (with `LEASE_LOST`) unless this replica still holds the rollout's lease once the write has the rollout's
 * lock — a replica that paused past its lease never acts on a rollout another replica has taken over.
 * Operators' commands leave it unset: they may act on any rollout.
 */
export interface DecisionContext extends TimeContext {
  leaseHolder?: string;
}

export { DEVICE_SORT_FIELDS, type DeviceSortField } from '../core/device.js';

export interface DeviceQuery extends TimeContext {
  filter?: FilterNode | undefined;
  sort?: DeviceSortField;
  descending?: boolean;
  /** Opaque cursor from a previous page. */
  cursor?: string | undefined;
  limit: number;
}

export interface DevicePage {
  devices: Device[];
  nextCursor: string | null;
}

export interface ImportResult {
  created: number;
  updated: number;
}

/**
 * A heartbeat with its proof, which the store checks as it writes it: the hash of the bearer credential it came
 * with, or the fingerprint of the client certificate (already verified by TLS) it came over.
 */
export type PresentedHeartbeat =
  | { heartbeat: Heartbeat; credentialHash: string; certificateFingerprint?: undefined }
  | { heartbeat: Heartbeat; certificateFingerprint: string; credentialHash?: undefined };

export type HeartbeatOutcome =
  | {
      ok: true;
      previousStatus: DeviceStatus;
      hasOpenUpdates: boolean;
      /** The interval of the device's connectivity class (docs/connectivity.md); absent: the server-wide one. */
      heartbeatIntervalMs?: number;
    }
  | { ok: false; reason: 'unauthenticated' };

export interface FleetStats {
  total: number;
  byStatus: Record<DeviceStatus, number>;
  firmware: Array<{ version: string | null; count: number }>;
  hardware: Array<{ hardwareType: string | null; count: number }>;
  /** tag key → value → count (only for the keys asked for, or every key when none is named). */
  tags: Record<string, Record<string, number>>;
  silent: { over24h: number; over30d: number };
}

export interface FleetSnapshot {
  at: number;
  total: number;
  byStatus: Record<DeviceStatus, number>;
}

export interface StoredEvent {
  id: number;
  at: number;
  type: string;
  deviceId: string | null;
  rolloutId: string | null;
  actor: string | null;
  reason: string | null;
  data: Record<string, unknown>;
}

export type NewEvent = Omit<StoredEvent, 'id'>;

export interface EventQuery {
  after?: number;
  /** Only events with a smaller id (paging back from the newest). */
  before?: number;
  /** Newest first, for "the latest N events" (default: oldest first, as a cursor reads them). */
  newestFirst?: boolean;
  limit: number;
  deviceId?: string;
  rolloutId?: string;
  typePrefix?: string;
}

export interface ApiToken {
  id: string;
  name: string;
  /** A built-in role (core/permissions.ts) or a custom one. */
  role: string;
  createdAt: number;
  /** A user signed in to the dashboard (a session, not a token): acts as `user:<name>`. */
  signedIn?: boolean;
}

export interface EnrollmentToken {
  id: string;
  usesLeft: number | null;
  expiresAt: number | null;
  tags: Record<string, string>;
  createdAt: number;
  /**
   * A filter (the filter language) naming the pre-registered devices this token may claim; without one it
   * only registers new device ids and never takes over an imported device.
   */
  claim?: string | null;
}

/** An enrollment token as listings show it: never its secret. */
export interface EnrollmentTokenInfo extends EnrollmentToken {
  claim: string | null;
  revokedAt: number | null;
}

export interface Enrollment {
  tokenHash: string;
  device: DeviceRecord;
  /** The bearer credential's hash; null when the device enrolls with a certificate instead. */
  credentialHash: string | null;
  /** The certificate issued for the device's CSR, recorded in the enrollment's transaction. */
  certificate?: NewDeviceCertificate | undefined;
}

/** The issuer name of certificates made by FleetD's own CA (a trusted factory CA goes by its own name). */
export const FLEETD_ISSUER = 'fleetd';

/** A device certificate as the store keeps it: never the private key, which stays on the device. */
export interface DeviceCertificate {
  serial: string;
  deviceId: string;
  /** SHA-256 of the DER, lowercase hex: how a TLS connection's client certificate is found. */
  fingerprint: string;
  issuer: string;
  notBefore: number;
  notAfter: number;
  issuedAt: number;
  revokedAt: number | null;
}

export type NewDeviceCertificate = Omit<DeviceCertificate, 'revokedAt'>;

/** Device certificates: which device a client certificate authenticates, and their revocation. */
export interface CertificateStore {
  /**
   * Records a certificate issued to a registered device, with its event (DEVICE_NOT_FOUND, and
   * DEVICE_DECOMMISSIONED for a retired one). The device's other certificates keep working (renewal, no gap).
   */
  record(certificate: NewDeviceCertificate, actor: string): Promise<void>;
  /** The device a certificate authenticates: null when it is unknown, revoked, or its device decommissioned. */
  deviceOf(fingerprint: string): Promise<string | null>;
  /** Revokes every live certificate of a device, with an event; returns how many (DEVICE_NOT_FOUND if unknown). */
  revokeDevice(deviceId: string, at: number, actor: string): Promise<number>;
  /** The revoked certificates of one issuer, oldest revocation first: what its CRL lists. */
  revoked(issuer: string): Promise<Array<{ serial: string; revokedAt: number }>>;
  /** A device's certificates, newest first. */
  ofDevice(deviceId: string): Promise<DeviceCertificate[]>;
}

/**
 * A device asking to join without an enrollment token (the approval queue, store/shared/admission.ts). The first
 * request records it as pending; a later one with the same `keyFingerprint` completes once it is accepted (or at
 * once when the import pre-authorised its id), writing the credential or certificate given here.
 */
export interface AdmissionRequest {
  device: DeviceRecord;
  /** SHA-256 (hex) of the requester's proof: its CSR's public key (SPKI DER) or its request secret. */
  keyFingerprint: string;
  /** The bearer credential's hash to write on completion; null when the device gets a certificate. */
  credentialHash: string | null;
  /** The certificate to record on completion (signed for this request; dropped while it waits). */
  certificate?: NewDeviceCertificate | undefined;
  /** Names the requester in events (default `device:<id>`); a factory CA's just-in-time path names itself. */
  actor?: string;
}

/** `pending`: not yet (nothing was written but, the first time, the request); `accepted`: enrolled now. */
export type AdmissionOutcome =
  | { admission: 'pending'; device: Device; firstRequest: boolean }
  | { admission: 'accepted'; device: Device };

/** One device of an accept or reject: its new admission, or why it was left as it was. */
export type AdmissionResult =
  | { id: string; ok: true; admission: DeviceAdmission }
  | { id: string; ok: false; error: { code: ErrorCode; message: string } };

export interface QueuedDevice {
  device: Device;
  keyFingerprint: string | null;
  /** When it first asked (its row's creation). */
  requestedAt: number;
}

/** The approval queue: devices that asked to join without a token, and the operator's decisions on them. */
export interface AdmissionStore {
  /**
   * Records or answers a tokenless request, in one transaction with its events (ENROLLMENT_REJECTED,
   * ADMISSION_KEY_MISMATCH when another requester holds the id, DEVICE_EXISTS for an enrolled or imported device
   * not pre-authorised, DEVICE_DECOMMISSIONED).
   */
  request(request: AdmissionRequest, ctx: TimeContext): Promise<AdmissionOutcome>;
  /**
   * Accepts or rejects devices by id or by filter (only those the decision can move), one result per device:
   * one that cannot move is reported and never fails the others.
   */
  decide(
    decision: AdmissionDecision,
    selection: { ids: string[] } | { filter: FilterNode },
    ctx: TimeContext,
    actor: string,
  ): Promise<AdmissionResult[]>;
  /** Devices with the given admission (default pending), oldest request first, at most `limit`. */
  waiting(
    limit: number,
    ctx: TimeContext,
    admission?: Exclude<DeviceAdmission, 'accepted'>,
  ): Promise<QueuedDevice[]>;
}

/** A manufacturer's CA trusted for device certificates (`fleetd ca trust`): never a private key. */
export interface TrustedCa {
  name: string;
  certificatePem: string;
  fingerprint: string;
  /** Tags given to every device a certificate from this CA registers. */
  tags: Record<string, string>;
  /** Where the hardware type is read from a device certificate: `ou` or `oid:<dotted OID>`. */
  hardwareFrom: string;
  /** Devices it registers wait for an operator's approval. */
  approve: boolean;
  addedAt: number;
  removedAt: number | null;
}

export type NewTrustedCa = Omit<TrustedCa, 'removedAt'>;

/** A device registering itself with a certificate from a trusted factory CA (just-in-time registration). */
export interface FactoryRegistration {
  device: DeviceRecord;
  /** Its factory certificate, recorded with `issuer` = the CA's name. */
  certificate: NewDeviceCertificate;
  caName: string;
}

/** Factory CAs and the devices their certificates register on first contact. */
export interface TrustedCaStore {
  /** Trusts a CA, with its event (CONFLICT when a live CA has this name or this certificate). */
  add(ca: NewTrustedCa, actor: string): Promise<TrustedCa>;
  /** The CAs trusted now, oldest first. */
  list(): Promise<TrustedCa[]>;
  /** Stops trusting a CA, with its event (NOT_FOUND when no live CA has this name). */
  remove(name: string, at: number, actor: string): Promise<TrustedCa>;
  /**
   * Registers a device by its factory certificate, with its event, in one transaction; returns the device id.
   * A certificate already recorded (live or revoked) changes nothing and returns null: a revoked one stays
   * refused. DEVICE_EXISTS when the id belongs to a device with a credential or a certificate of its own,
   * DEVICE_DECOMMISSIONED for a retired one; a pre-registered device without either is claimed.
   */
  registerDevice(registration: FactoryRegistration, ctx: TimeContext): Promise<string | null>;
}

/** One device of a tag edit: its tags after it, or why it was left as it was. */
export type TagResult =
  | { id: string; ok: true; tags: Record<string, string>; changed: boolean }
  | { id: string; ok: false; error: { code: ErrorCode; message: string } };

/** Tag edits (`fleetd devices tag`): by id or filter, one result per device, a `device.tagged` event per change. */
export interface TagStore {
  edit(
    edit: TagEdit,
    selection: { ids: string[] } | { filter: FilterNode },
    ctx: TimeContext,
    actor: string,
  ): Promise<TagResult[]>;
}

/** A command as stored, with the counts of its devices by state. */
export interface RemoteCommand {
  id: string;
  spec: CommandSpec;
  createdAt: number;
  expiresAt: number;
  maxConcurrent: number;
  actor: string;
  counts: Partial<Record<CommandState, number>>;
}

export interface NewRemoteCommand {
  id: string;
  spec: CommandSpec;
  expiresAt: number;
  maxConcurrent: number;
}

/** One device's run of a command, with its result (never the collected logs themselves). */
export interface CommandTarget {
  commandId: string;
  deviceId: string;
  state: CommandState;
  deliveredAt: number | null;
  finishedAt: number | null;
  exitCode: number | null;
  output: string | null;
  outputTruncated: boolean;
  error: string | null;
  logsBytes: number | null;
}

/** What a device's heartbeat hands it: its command, with the deadline. */
export interface DeliveredCommand {
  id: string;
  spec: CommandSpec;
  expiresAt: number;
}

export interface CommandResult {
  exitCode: number | null;
  output: string;
  outputTruncated: boolean;
  error: string | null;
  /** collect-logs: the file, base64, and its size. */
  logs?: { base64: string; bytes: number };
}

/** One device a command was sent to, or why it was not. */
export type CommandTargetResult =
  | { id: string; ok: true }
  | { id: string; ok: false; error: { code: ErrorCode; message: string } };

/** Remote commands: queued per device, delivered by heartbeat within the concurrency bound, expired on time. */
export interface CommandStore {
  /**
   * Queues a command for devices by id or filter, with a `command.queued` event per device, in one transaction;
   * an unknown or decommissioned device is reported and never fails the others. A command no device takes is
   * not stored (its `command` is undefined).
   */
  create(
    command: NewRemoteCommand,
    selection: { ids: string[] } | { filter: FilterNode },
    ctx: TimeContext,
    actor: string,
  ): Promise<{ command: RemoteCommand | undefined; results: CommandTargetResult[] }>;
  get(id: string): Promise<RemoteCommand | undefined>;
  targets(id: string, limit: number): Promise<CommandTarget[]>;
  /** A device's commands, newest first. */
  ofDevice(
    deviceId: string,
    limit: number,
  ): Promise<Array<{ command: RemoteCommand; target: CommandTarget }>>;
  /**
   * Hands these devices their queued, unexpired commands, as far as each command's concurrency allows, marking
   * them delivered with an event: each is delivered once.
   */
  deliver(deviceIds: readonly string[], ctx: TimeContext): Promise<Map<string, DeliveredCommand[]>>;
  /**
   * A device's result for a command delivered to it (NOT_FOUND when it is not this device's command;
   * TRANSITION_NOT_ALLOWED when it was never delivered). A result sent again changes nothing.
   */
  recordResult(
    deviceId: string,
    commandId: string,
    result: CommandResult,
    ctx: TimeContext,
  ): Promise<{ accepted: boolean; state: CommandState }>;
  /**
   * The queued devices of an unexpired command that its free slots would take now (oldest id first): whom to wake
   * when a device finishes.
   */
  nextInLine(commandId: string, now: number): Promise<string[]>;
  /** The collected logs of a device's run (base64), or undefined. */
  logs(commandId: string, deviceId: string): Promise<string | undefined>;
  /** Moves open runs of commands past their deadline to `expired`, with a `command.expired` event each. */
  expire(ctx: TimeContext, limit?: number): Promise<number>;
}

/** One report of a device: its metrics now, and when it sends one, its whole inventory (docs/telemetry.md). */
export interface TelemetryReport {
  metrics: TelemetryMetrics;
  inventory?: Omit<DeviceInventory, 'reportedAt'>;
}

/** A point of a series: a raw sample (count 1, min = max = avg) or an hour's aggregate. */
export interface TelemetryPoint {
  at: number;
  count: number;
  min: number;
  max: number;
  avg: number;
}

export interface TelemetrySeries {
  name: string;
  points: TelemetryPoint[];
}

export interface TelemetrySeriesQuery {
  resolution: 'raw' | 'hourly';
  since: number;
  until: number;
  /** Only these metrics; all when absent. */
  names?: string[];
  /** At most this many points in all (the newest are kept). */
  limit: number;
}

/** Telemetry and inventory: a bounded series per device (raw, hourly), the latest values, the latest inventory. */
export interface TelemetryStore {
  /**
   * Records a report at `now`: its samples, their hours' aggregates, the latest values, and the inventory when it
   * has one, in one transaction. A report less than `minIntervalMs` after the device's previous one is not
   * recorded (`accepted: false`), which bounds what one device can write.
   */
  record(
    deviceId: string,
    report: TelemetryReport,
    now: number,
    minIntervalMs: number,
  ): Promise<{ accepted: boolean; retryAfterMs: number }>;
  /**
   * The same for several devices' reports in one transaction (group commit, as heartbeats are written): one
   * answer per report, in order. A device's second report in one batch is too soon by definition.
   */
  recordBatch(
    reports: ReadonlyArray<{ deviceId: string; report: TelemetryReport }>,
    now: number,
    minIntervalMs: number,
  ): Promise<Array<{ accepted: boolean; retryAfterMs: number }>>;
  latest(deviceId: string): Promise<Array<{ name: string; value: number; at: number }>>;
  series(deviceId: string, query: TelemetrySeriesQuery): Promise<TelemetrySeries[]>;
  inventory(deviceId: string): Promise<DeviceInventory | undefined>;
  /** Removes raw samples older than `rawMs` and hourly aggregates older than `hourlyMs`; returns the rows removed. */
  prune(
    now: number,
    retention: Pick<TelemetryRetention, 'rawMs' | 'hourlyMs'>,
  ): Promise<{ samples: number; hourly: number }>;
  /** Rows held (the benchmark's and the tests' measure of boundedness). */
  size(): Promise<{ samples: number; hourly: number; latest: number; packages: number }>;
}

export interface StatusTransition {
  deviceId: string;
  from: DeviceStatus;
  to: DeviceStatus;
}

export interface Release {
  id: string;
  name: string;
  version: string;
  type: ReleaseType;
  hardware: string[];
  size: number;
  sha256: string;
  /** Canonical manifest text: the exact bytes the signature covers. */
  manifest: string;
  signature: string;
  keyId: string;
  allowDowngrade: boolean;
  createdAt: number;
}

export type UpdateAction = 'install' | 'download_only' | 'switch';

export interface DeviceUpdate {
  id: string;
  deviceId: string;
  releaseId: string;
  rolloutId: string | null;
  phase: number;
  purpose: UpdatePurpose;
  state: UpdateState;
  action: UpdateAction;
  lastSeq: number;
  progress: number | null;
  error: string | null;
  attempts: number;
  fromVersion: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export interface UpdateOffer {
  update: DeviceUpdate;
  release: Release;
  /** Set when the server holds the device back (no free slot, outside its window…): ask again after this. */
  retryAfterSec: number | null;
  /** Why it is held back, when it is. */
  holdReason?: string | undefined;
  /** The rollout's action is soft: the device may defer installing it (its consent hook). */
  soft: boolean;
  /** Bytes per second the download may take (the rollout's limit or the device's tag); none when unset. */
  downloadRateLimit?: number | undefined;
  /** The rollout moves devices without TUF to TUF (`adopt_tuf`, docs/signing.md). */
  adoptTuf?: boolean | undefined;
}

export interface StatusReport {
  seq: number;
  state: DeviceReportedState;
  progress?: number | undefined;
  error?: string | undefined;
}

export interface ReportItem {
  deviceId: string;
  updateId: string;
  report: StatusReport;
}

export interface ReportOutcome {
  accepted: boolean;
  state: UpdateState;
}

export interface AssignResult {
  assigned: DeviceUpdate[];
  skipped: Array<{ deviceId: string; reason: string }>;
}

export interface ReleaseStore {
  /** CONFLICT when name@version exists. */
  create(release: Release, actor: string): Promise<void>;
  get(name: string, version: string): Promise<Release | undefined>;
  getById(id: string): Promise<Release | undefined>;
  list(): Promise<Release[]>;
  /** CONFLICT while a device update that is not final uses it. */
  delete(id: string, at: number, actor: string): Promise<void>;
  /** Whether any release, or a variant of one, still points at this blob. */
  blobInUse(sha256: string): Promise<boolean>;
}

/** What the server adds to an offer's limits. */
export interface OfferOptions {
  /** The fleet-wide egress cap in bytes per second (`--egress-cap`): downloads granted at once fit under it. */
  egressCap?: number | undefined;
}

export interface UpdateStore {
  /** Assigns a release to explicit devices; devices it cannot apply to are skipped with a reason. */
  assign(
    deviceIds: string[],
    releaseId: string,
    options: { action: UpdateAction; rolloutId?: string | null },
    ctx: TimeContext,
    actor: string,
  ): Promise<AssignResult>;
  /** The updates to hand each device on its heartbeat; pending ones become notified (with their event). */
  offer(deviceIds: string[], ctx: TimeContext, options?: OfferOptions): Promise<Map<string, UpdateOffer[]>>;
  /** A device's status report: idempotent and ordered by its sequence number. */
  report(deviceId: string, updateId: string, report: StatusReport, ctx: TimeContext): Promise<ReportOutcome>;
  /**
   * Several devices' reports at once (written together where the database allows: group commit), each taken
   * or refused on its own; a refusal is returned as the FleetError `report` would throw. Where each report
   * is its own transaction, one the database fails on is answered with its error and the others stand; where
   * they share one, such a failure rejects the whole call (nothing written) and each can be sent again alone.
   */
  reportBatch(items: readonly ReportItem[], ctx: TimeContext): Promise<Array<ReportOutcome | Error>>;
  get(id: string): Promise<DeviceUpdate | undefined>;
  list(query: {
    deviceId?: string;
    releaseId?: string;
    rolloutId?: string;
    state?: UpdateState;
    phase?: number;
    limit: number;
  }): Promise<DeviceUpdate[]>;
  cancel(id: string, ctx: TimeContext, actor: string): Promise<DeviceUpdate>;
  /**
   * The same question as mayDownload, answered with the download's rate limit in bytes per second (the rollout's
   * or the device's tag; null = none); undefined when the device has no such update.
   */
  downloadGrant(deviceId: string, sha256: string): Promise<{ rateLimit: number | null } | undefined>;
  /** Whether the device has an update in progress for a release with this blob. */
  mayDownload(deviceId: string, sha256: string): Promise<boolean>;
}

/** The latest gate decision of one phase, as recorded when it changed. */
export interface GateRecord {
  phase: number;
  decision: 'wait' | 'pass' | 'halt' | 'await_approval';
  reason: string | null;
  successRate: number | null;
  threshold: number | null;
  finished: number;
  at: number;
}

export interface Rollout {
  id: string;
  name: string;
  releaseId: string;
  /** `name@version` */
  release: string;
  spec: RolloutSpec;
  state: RolloutState;
  currentPhase: number;
  /** When each phase started, by index (a phase not started yet has no entry). */
  phaseStarts: number[];
  gates: GateRecord[];
  approvedPhase: number;
  promoted: boolean;
  targets: number;
  reason: string | null;
  createdBy: string;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export type RolloutPatch = Partial<
  Pick<
    Rollout,
    | 'state'
    | 'currentPhase'
    | 'phaseStarts'
    | 'gates'
    | 'approvedPhase'
    | 'promoted'
    | 'reason'
    | 'startedAt'
    | 'finishedAt'
    | 'targets'
  >
>;

/** Work on a rollout's device updates done in the same transaction as a change of the rollout itself. */
export interface RolloutEffects {
  /** Devices of phases up to this one may now be offered the update (scheduled → pending). */
  releasePhase?: number;
  /** Updates not started yet end as `to`; with `alsoStarted`, those downloading are cancelled too. */
  endWaiting?: { to: 'skipped' | 'cancelled'; reason: string; alsoStarted: boolean; actor: string | null };
  /**
   * Queue a return to its previous version for every device this rollout changed and has not returned yet;
   * devices whose previous release is not in the store are reported in a `rollout.rollback_unavailable` event.
   */
  rollbackBy?: string;
  /**
   * Write only while the rollout is still in this phase: an operator's promote decided on phase N must not
   * advance a rollout the engine has meanwhile moved on (TRANSITION_NOT_ALLOWED).
   */
  atPhase?: number;
}

export interface PhaseStateCount {
  phase: number;
  purpose: UpdatePurpose;
  state: UpdateState;
  count: number;
}

export interface WaitingDevice {
  deviceId: string;
  phase: number;
  lastSeen: number | null;
  timezone: string | null;
  hardwareType: string | null;
  /** Its connectivity class's offline threshold (docs/connectivity.md); absent or null: the server-wide one. */
  offlineAfterMs?: number | null;
}

export interface StatusHistory {
  /** When the device was registered: nothing is known of it before. */
  registeredAt: number;
  /** Oldest first; `online` true when it came online, false when it went offline (or abandoned). */
  changes: Array<{ at: number; online: boolean }>;
}

/** The devices a rollout plans over: those matching its filter, with the value of its `max_concurrent_per` tag. */
export interface PlanSelection {
  filter: FilterNode | undefined;
  tagKey: string | null;
}

/** A new rollout and its device updates (one per target, skipped ones included). */
export interface NewRollout {
  rollout: Rollout;
  targets: PlannedTarget[];
}

/** Devices a rollback could not return: the release's name, and the version each ran before (null: unknown). */
export interface RollbackUnavailable {
  release: string;
  total: number;
  devices: Array<{ deviceId: string; version: string | null }>;
}

/** An update waiting to start, as a wake-up reads it: what the core's wake rule decides on. */
export type PendingUpdate = WakeCandidate;

/** What the health gate asks of a phase: the release version and its policy's limits, at `now`. */
export interface PhaseHealthQuery {
  version: string;
  now: number;
  soakMs: number;
  /**
   * Silent this long after updating = dark; null: each device's offline threshold, its connectivity class's
   * (docs/connectivity.md) or else `offlineAfterMs`.
   */
  darkAfterMs: number | null;
  /** The server-wide offline threshold: for devices in no class, and the control group's "online". */
  offlineAfterMs: number;
  maxReboots: number | null;
  maxAppCrashes: number | null;
}

export interface RolloutStore {
  /**
   * Plans and writes a rollout in one transaction: `plan` gets the selected devices, read in that transaction
   * exactly as `planDevices` reads them, and returns the rollout and its targets (written in the order given;
   * by device id is the fastest). Updates of the targets that have not started are cancelled: the newest wins.
   * Writes the rollout's event; returns what `plan` returned.
   */
  create<T extends NewRollout>(
    selection: PlanSelection,
    plan: (devices: PlanDevice[]) => T,
    ctx: TimeContext,
  ): Promise<T>;
  get(id: string): Promise<Rollout | undefined>;
  list(query: { states?: readonly RolloutState[]; limit: number }): Promise<Rollout[]>;
  /**
   * Writes a patch (and its events) only while the rollout is in one of `from`: a decision made on a state
   * another command or replica has changed meanwhile is refused (TRANSITION_NOT_ALLOWED), never applied.
   */
  update(
    id: string,
    from: readonly RolloutState[],
    patch: RolloutPatch,
    events: NewEvent[],
    ctx: DecisionContext,
    effects?: RolloutEffects,
  ): Promise<Rollout>;
  counts(id: string): Promise<PhaseStateCount[]>;
  /** Updates in progress that were granted their slot before `grantedBefore` fail as timed out. */
  timeOut(id: string, grantedBefore: number, ctx: DecisionContext): Promise<number>;
  /** Failed updates with attempts left go back to pending, not offered before their backoff has passed. */
  retryFailed(id: string, policy: RetryPolicy, ctx: DecisionContext): Promise<number>;
  /** Devices of `phase` still waiting to start although online: they hold a rolling batch open. */
  waitingOnline(id: string, phase: number, ctx: TimeContext): Promise<number>;
  /** The health gate's view of a phase's succeeded updates and of the control group (docs/health-gates.md). */
  phaseHealth(id: string, phase: number, query: PhaseHealthQuery): Promise<HealthSample>;
  /** Devices matching the filter, as the planner needs them (with the value of `tagKey`, if any), by id. */
  planDevices(selection: PlanSelection, ctx: TimeContext): Promise<PlanDevice[]>;
  /** Matching devices this rollout has no update for yet (on_connect takes them in as they appear). */
  newcomers(
    id: string,
    filter: FilterNode | undefined,
    tagKey: string | null,
    ctx: TimeContext,
  ): Promise<PlanDevice[]>;
  addTargets(id: string, targets: PlannedTarget[], ctx: DecisionContext): Promise<number>;
  /** blue_green: a switch for every device that has staged the release and has none yet. */
  addSwitches(id: string, ctx: DecisionContext): Promise<number>;
  /**
   * Up to `limit` of the devices still waiting to start, evenly spaced over the rollout (every phase in its
   * share; all of them when `limit` is at least their number), for the ETA.
   */
  waitingDevices(id: string, limit: number): Promise<{ devices: WaitingDevice[]; total: number }>;
  /**
   * The rollout's updates waiting to start now (`pending`), `limit` at a time by update id after `after`, with
   * what decides whether the device may start: for waking the devices that may.
   */
  pendingUpdates(id: string, after: string | null, limit: number): Promise<PendingUpdate[]>;
  /**
   * Devices the rollout changed that have no way back queued: no release of the version they ran before is in
   * the store (the first `limit` of them, by id, and how many in all).
   */
  rollbackUnavailable(id: string, limit: number): Promise<RollbackUnavailable>;
  /** The time zones of the rollout's target devices (null: none set). */
  targetZones(id: string): Promise<Array<string | null>>;
  /** Each device's registration and status changes since `since` (its status events), for the ETA. */
  statusHistory(deviceIds: string[], since: number): Promise<Map<string, StatusHistory>>;
  /** How long this rollout's latest granted updates that have finished held their slot (granted → finished). */
  updateDurations(id: string, limit: number): Promise<number[]>;
  /** The latest failures, newest first. */
  failures(id: string, limit: number): Promise<Array<{ deviceId: string; error: string | null; at: number }>>;
  /** Times at which this rollout's updates finished, since `since` (throughput). */
  finishedSince(id: string, since: number): Promise<number[]>;
  /**
   * Takes, renews and gives back rollout leases so that `owner` holds its fair share: ceil(open rollouts / live
   * replicas), the live replicas being those announced (`ReplicaStore.announce`) and `owner` itself. It keeps
   * its oldest rollouts up to the share, takes free ones or those whose lease ran out (lease_until < now) up to
   * it, and hands back the rest (core/rollout/lease-share.ts); returns the ids held, oldest rollout first.
   * Atomic against other claimers: two replicas never both come out holding one rollout.
   */
  claimLeases(owner: string, now: number, ttlMs: number): Promise<string[]>;
  releaseLeases(owner: string): Promise<void>;
  /**
   * Update times (granted → finished) of the latest finished updates on devices of these hardware types, in
   * rollouts other than `except`: the ETA's update time before this rollout has its own.
   */
  hardwareUpdateDurations(hardwareTypes: string[], except: string | null, limit: number): Promise<number[]>;
}

/** A replica that announced itself and whose row has not run out. */
export interface LiveReplica {
  name: string;
  startedAt: number;
  expiresAt: number;
}

/**
 * The replicas driving rollouts. Each announces itself on every engine tick; one that stops doing so (it died)
 * is no longer counted once `now + ttlMs` of its last announcement has passed.
 */
export interface ReplicaStore {
  announce(name: string, now: number, ttlMs: number): Promise<void>;
  /** Drops the replica at once (a clean stop), so the others count without it on their next claim. */
  leave(name: string): Promise<void>;
  live(now: number): Promise<LiveReplica[]>;
}

export interface NewWebhook {
  id: string;
  url: string;
  secret: string;
  /** Event type prefixes ("rollout.", "update.failed"); empty: every event. */
  types: string[];
  rolloutId: string | null;
  createdAt: number;
}

export interface Webhook extends NewWebhook {
  disabledAt: number | null;
  /** The last event id delivered (or passed over by the filter); delivery resumes after it. */
  cursor: number;
  /** Failed attempts since the last successful delivery. */
  failures: number;
  /** Not before this instant (ms since the epoch); 0: at once. */
  nextAttemptAt: number;
  lastError: string | null;
  lastDeliveredAt: number | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
}

/**
 * Webhooks and their delivery state. Delivery is leased: `claim` hands a webhook to one replica until its
 * lease ends, and `advance`, `recordFailure` and `release` only act for the replica holding the lease.
 */
export interface WebhookStore {
  /** Creates the webhook positioned after the newest event (it receives events from now on), with its event. */
  create(webhook: NewWebhook, actor: string): Promise<Webhook>;
  list(): Promise<Webhook[]>;
  get(id: string): Promise<Webhook | undefined>;
  /** NOT_FOUND when there is no such webhook. */
  delete(id: string, at: number, actor: string): Promise<void>;
  /** Appends a `webhook.test` event addressed to this webhook and returns it; NOT_FOUND when there is none. */
  sendTest(id: string, at: number, actor: string): Promise<StoredEvent>;
  /** Events in the log after the webhook's cursor (whether or not its filter matches them). */
  lag(id: string): Promise<number>;
  /**
   * Leases up to `limit` enabled webhooks that are due (`next_attempt_at` ≤ now), behind `headEventId`, and
   * not leased to anyone else (or whose lease ran out) to `owner` until `now + leaseMs`.
   */
  claim(
    owner: string,
    options: { now: number; leaseMs: number; limit: number; headEventId: number },
  ): Promise<Webhook[]>;
  /**
   * Moves the cursor forward to `cursor` after a delivery (or events the filter passes over), clears the
   * failures and extends the lease. False when `owner` no longer holds the lease (nothing is changed).
   */
  advance(
    id: string,
    owner: string,
    options: { cursor: number; now: number; delivered: boolean; leaseUntil: number },
  ): Promise<boolean>;
  /** Counts a failed attempt, schedules the next one and releases the lease. False when not the holder. */
  recordFailure(
    id: string,
    owner: string,
    options: { error: string; nextAttemptAt: number },
  ): Promise<boolean>;
  /** Gives the lease back, when `owner` holds it. */
  release(id: string, owner: string): Promise<void>;
}

/** How long events are kept: by age, by count, or both (null: no bound of that kind). */
export interface RetentionPolicy {
  maxAgeMs: number | null;
  maxCount: number | null;
}

/**
 * What a pruning run may remove: the events with ids in [fromId, beforeId); `fromAt` is the time of the
 * oldest event, `beforeAt` the instant of the cut (status history before it is summed up first).
 */
export interface PrunePlan {
  fromId: number;
  fromAt: number;
  beforeId: number;
  beforeAt: number;
}

/**
 * Event retention (store/shared/event-retention.ts): raw events pruned in bounded batches, a device's status
 * history summed up per UTC day before its `device.status` events go. One replica prunes at a time (a lease);
 * each step is also harmless when run twice or by two replicas.
 */
export interface EventRetentionStore {
  /** Takes or renews the pruning lease until `now + leaseMs`; false when another replica holds it. */
  claim(owner: string, now: number, leaseMs: number): Promise<boolean>;
  release(owner: string): Promise<void>;
  plan(policy: RetentionPolicy, now: number): Promise<PrunePlan>;
  /** Status history before this instant (a UTC midnight; 0: none) is read from the days, not the events. */
  daysUntil(): Promise<number>;
  /** Moves `daysUntil` forward to `until` (never back). */
  advanceDaysUntil(until: number): Promise<void>;
  /**
   * Sums up UTC day `day` for up to `limit` devices known that day, in id order after `afterDeviceId`; returns
   * the last device done, or undefined when none was left.
   */
  summarizeDay(day: number, afterDeviceId: string | undefined, limit: number): Promise<string | undefined>;
  /**
   * Deletes up to `limit` events of the plan's range from `fromId` on, keeping those of open rollouts and the
   * `device.status` events from `statusBefore` on; returns how many went and where the next batch starts.
   */
  deleteEvents(
    fromId: number,
    beforeId: number,
    statusBefore: number,
    limit: number,
  ): Promise<{ deleted: number; nextId: number }>;
  /** Deletes up to `limit` status days before day `beforeDay`; returns how many went. */
  deleteDays(beforeDay: number, limit: number): Promise<number>;
}

/** Which audit entries to list (store/shared/audit-log.ts), by seq. */
export interface AuditQuery {
  actor?: string;
  /** Entries at or after this time. */
  since?: number;
  afterSeq?: number;
  upToSeq?: number;
  newestFirst?: boolean;
  limit: number;
}

export interface AuditVerdict extends ChainVerdict {
  head: ChainAnchor;
  anchor: ChainAnchor;
}

/** The audit log: append-only and hash-chained (core/audit/audit-chain.ts, docs/audit.md). */
export interface AuditStore {
  /** Appends one entry as the next link of the one chain, whichever replica writes it. */
  append(record: AuditRecord): Promise<AuditEntry>;
  list(query: AuditQuery): Promise<AuditEntry[]>;
  /** The newest entry's seq and hash, and the anchor (the last entry pruned) verification starts from. */
  head(): Promise<{ head: ChainAnchor; anchor: ChainAnchor }>;
  /** Checks the chain from the anchor to the head; names the first entry that does not hold. */
  verify(pageSize?: number): Promise<AuditVerdict>;
  /**
   * Removes up to `limit` of the oldest entries written before `before` (never the newest) and moves the anchor
   * to the last one removed, so what is kept still verifies; returns how many went.
   */
  prune(before: number, limit: number): Promise<number>;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly releases: ReleaseStore;
  readonly updates: UpdateStore;
  readonly rollouts: RolloutStore;
  readonly webhooks: WebhookStore;
  readonly retention: EventRetentionStore;
  readonly replicas: ReplicaStore;
  readonly certificates: CertificateStore;
  readonly admission: AdmissionStore;
  readonly trustedCas: TrustedCaStore;
  readonly principals: PrincipalStore;
  readonly audit: AuditStore;
  readonly tags: TagStore;
  readonly commands: CommandStore;
  readonly deltas: DeltaStore;
  readonly rateCounts: RateCountStore;
  readonly delivery: DeliveryStore;
  readonly sessions: SessionStore;
  readonly telemetry: TelemetryStore;
  readonly groups: GroupStore;
  readonly deviceWindows: DeviceWindowStore;
  readonly config: ConfigStore;
  readonly configRollouts: ConfigRolloutStore;
  readonly connectivity: ConnectivityStore;
  readonly variants: ReleaseVariantStore;
  readonly director: DirectorStore;
  close(): Promise<void>;

  // Device registry
  /** Creates or updates devices; ids in `preauthorized` join at their first tokenless request (approval queue). */
  importDevices(
    records: DeviceRecord[],
    ctx: TimeContext,
    actor: string,
    preauthorized?: ReadonlySet<string>,
  ): Promise<ImportResult>;
  getDevice(id: string, ctx: TimeContext): Promise<Device | undefined>;
  listDevices(query: DeviceQuery): Promise<DevicePage>;
  countDevices(filter: FilterNode | undefined, ctx: TimeContext): Promise<number>;
  /** Retires a device: its credential goes and its certificates are revoked, in one transaction. */
  decommissionDevice(id: string, ctx: TimeContext, actor: string): Promise<Device>;
  /** Replaces a device's credential (operator-issued); the plain credential is never stored. */
  setCredential(id: string, credentialHash: string, ctx: TimeContext, actor: string): Promise<void>;
  /**
   * The same for many devices in one transaction (a provisioning line, the simulator); unknown and
   * decommissioned devices are left out and returned.
   */
  setCredentials(
    credentials: ReadonlyArray<{ id: string; credentialHash: string }>,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ set: number; refused: string[] }>;
  /** The stored credential hash, for authenticating a device; undefined for unknown or decommissioned devices. */
  credentialHash(id: string): Promise<string | undefined>;
  /** Consumes one use of an enrollment token and registers (or claims) the device, atomically. */
  enroll(enrollment: Enrollment, ctx: TimeContext): Promise<Device>;

  /**
   * Authenticates and writes a batch of heartbeats in one transaction (group commit), with a status event
   * for each change. Unknown devices, decommissioned ones, wrong credentials and certificates that are not the
   * device's live ones are all `unauthenticated`.
   */
  recordHeartbeats(batch: PresentedHeartbeat[], ctx: TimeContext): Promise<HeartbeatOutcome[]>;
  /**
   * Records online→offline→abandoned transitions of devices that went silent, with their events.
   * `since` (the time of the previous sweep) limits the search to devices that went silent after it.
   */
  sweepStatuses(ctx: TimeContext, since?: number): Promise<StatusTransition[]>;
  fleetStats(
    filter: FilterNode | undefined,
    tagKeys: string[] | undefined,
    ctx: TimeContext,
  ): Promise<FleetStats>;
  /**
   * Records the counts by status now (the sweeper does, every few minutes), for the online share over time.
   * With `minGapMs`, nothing is recorded when a snapshot is less than that old (several replicas sweep; one
   * series is kept) and undefined is returned.
   */
  recordFleetSnapshot(ctx: TimeContext): Promise<FleetSnapshot>;
  recordFleetSnapshot(ctx: TimeContext, minGapMs: number): Promise<FleetSnapshot | undefined>;
  fleetHistory(since: number, until: number): Promise<FleetSnapshot[]>;

  // Events (the outbox and the audit log)
  appendEvents(events: NewEvent[]): Promise<void>;
  listEvents(query: EventQuery): Promise<StoredEvent[]>;
  /** The id of the newest event (0 when there is none): where "from now on" starts. */
  lastEventId(): Promise<number>;

  // Credentials
  createApiToken(token: ApiToken, tokenHash: string): Promise<void>;
  findApiToken(tokenHash: string): Promise<ApiToken | undefined>;
  countApiTokens(): Promise<number>;
  createEnrollmentToken(token: EnrollmentToken, tokenHash: string, actor: string): Promise<void>;
  /** Every enrollment token, newest first, revoked and expired ones included. */
  listEnrollmentTokens(): Promise<EnrollmentTokenInfo[]>;
  /** Revokes a token (NOT_FOUND when unknown, CONFLICT when already revoked). */
  revokeEnrollmentToken(id: string, at: number, actor: string): Promise<void>;
  /**
   * Makes `token` the API token of its name, revoking that name's live ones, in one transaction (local
   * recovery of the admin token); returns how many were revoked.
   */
  replaceApiToken(token: ApiToken, tokenHash: string, actor: string): Promise<number>;
}

/** A named group of devices (docs/groups.md): static (its members listed) or dynamic (a saved filter). */
export interface DeviceGroup {
  id: string;
  name: string;
  description: string;
  kind: 'static' | 'dynamic';
  /** Dynamic groups only. */
  filter: string | null;
  createdAt: number;
  updatedAt: number;
}

export type NewGroup = { id: string; name: string; description: string } & (
  | { kind: 'static' }
  | { kind: 'dynamic'; filter: string }
);

export interface GroupChange {
  description?: string;
  /** Dynamic groups only. */
  filter?: string;
}

/** One device of a membership change: whether it changed, or why it could not. */
export type GroupMemberResult =
  | { id: string; ok: true; changed: boolean }
  | { id: string; ok: false; error: { code: ErrorCode; message: string } };

/** What names a group, and so keeps it from being deleted. */
export interface GroupUser {
  kind: 'rollout' | 'token' | 'user' | 'group';
  name: string;
}

export interface GroupStore {
  /** `group = NAME` terms replaced (core/filter/expand.ts); every filter goes through this before SQL. */
  expand(filter: FilterNode | undefined): Promise<FilterNode | undefined>;
  list(): Promise<DeviceGroup[]>;
  get(name: string): Promise<DeviceGroup | undefined>;
  /** CONFLICT when the name is taken; a dynamic group's filter must expand (no unknown group, no cycle). */
  create(group: NewGroup, ctx: TimeContext, actor: string): Promise<DeviceGroup>;
  update(name: string, change: GroupChange, ctx: TimeContext, actor: string): Promise<DeviceGroup>;
  /** CONFLICT naming the users (open rollouts, scopes, other groups) while any names it. */
  remove(name: string, ctx: TimeContext, actor: string): Promise<void>;
  addMembers(name: string, ids: string[], ctx: TimeContext, actor: string): Promise<GroupMemberResult[]>;
  removeMembers(name: string, ids: string[], ctx: TimeContext, actor: string): Promise<GroupMemberResult[]>;
}
