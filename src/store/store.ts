/**
 * The storage port. Every adapter (sqlite/, postgres/) provides exactly this; nothing outside store/ sees SQL.
 * Each mutating method is one transaction that writes its events with it (outbox), so an acknowledged
 * write and its event are never separated by a crash.
 */
import type { Device, DeviceRecord, DeviceStatus, Heartbeat, StatusThresholds } from '../core/device.js';
import type { FilterNode } from '../core/filter/index.js';
import type { ReleaseType } from '../core/manifest.js';
import type { DeviceReportedState, UpdateState } from '../core/update-state.js';

export interface TimeContext {
  now: number;
  thresholds: StatusThresholds;
}

export const DEVICE_SORT_FIELDS = ['id', 'name', 'last_seen', 'firmware', 'hardware', 'created'] as const;
export type DeviceSortField = (typeof DEVICE_SORT_FIELDS)[number];

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

/** A heartbeat with the hash of the credential it came with: the store authenticates it as it writes it. */
export interface PresentedHeartbeat {
  heartbeat: Heartbeat;
  credentialHash: string;
}

export type HeartbeatOutcome =
  | { ok: true; previousStatus: DeviceStatus; hasOpenUpdates: boolean }
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
  role: 'admin' | 'operator' | 'viewer';
  createdAt: number;
}

export interface EnrollmentToken {
  id: string;
  usesLeft: number | null;
  expiresAt: number | null;
  tags: Record<string, string>;
  createdAt: number;
}

export interface Enrollment {
  tokenHash: string;
  device: DeviceRecord;
  credentialHash: string;
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
}

export interface StatusReport {
  seq: number;
  state: DeviceReportedState;
  progress?: number | undefined;
  error?: string | undefined;
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
  /** Whether any release still points at this blob. */
  blobInUse(sha256: string): Promise<boolean>;
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
  offer(deviceIds: string[], ctx: TimeContext): Promise<Map<string, UpdateOffer[]>>;
  /** A device's status report: idempotent and ordered by its sequence number. */
  report(deviceId: string, updateId: string, report: StatusReport, ctx: TimeContext): Promise<ReportOutcome>;
  get(id: string): Promise<DeviceUpdate | undefined>;
  list(query: {
    deviceId?: string;
    releaseId?: string;
    rolloutId?: string;
    limit: number;
  }): Promise<DeviceUpdate[]>;
  cancel(id: string, ctx: TimeContext, actor: string): Promise<DeviceUpdate>;
  /** Whether the device has an update in progress for a release with this blob. */
  mayDownload(deviceId: string, sha256: string): Promise<boolean>;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly releases: ReleaseStore;
  readonly updates: UpdateStore;
  close(): Promise<void>;

  // Device registry
  importDevices(records: DeviceRecord[], ctx: TimeContext, actor: string): Promise<ImportResult>;
  getDevice(id: string, ctx: TimeContext): Promise<Device | undefined>;
  listDevices(query: DeviceQuery): Promise<DevicePage>;
  countDevices(filter: FilterNode | undefined, ctx: TimeContext): Promise<number>;
  decommissionDevice(id: string, ctx: TimeContext, actor: string): Promise<Device>;
  /** Replaces a device's credential (operator-issued); the plain credential is never stored. */
  setCredential(id: string, credentialHash: string, ctx: TimeContext, actor: string): Promise<void>;
  /** The stored credential hash, for authenticating a device; undefined for unknown or decommissioned devices. */
  credentialHash(id: string): Promise<string | undefined>;
  /** Consumes one use of an enrollment token and registers (or claims) the device, atomically. */
  enroll(enrollment: Enrollment, ctx: TimeContext): Promise<Device>;

  /**
   * Authenticates and writes a batch of heartbeats in one transaction (group commit), with a status event
   * for each change. Unknown devices, decommissioned ones and wrong credentials are all `unauthenticated`.
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
  /** Records the counts by status now (the sweeper does, every few minutes), for the online share over time. */
  recordFleetSnapshot(ctx: TimeContext): Promise<FleetSnapshot>;
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
}
