/**
 * Table types for Kysely. Times are integers (ms since epoch, UTC) in both dialects; JSON is stored as text
 * so both adapters read and write the same values.
 */

import type { ColumnType, Generated } from 'kysely';
import type { DeviceAdmission } from '../core/admission.js';
import type { CommandKind, CommandState } from '../core/command.js';
import type { ConfigResult } from '../core/config-document.js';
import type { DeviceStatus } from '../core/device.js';
import type { UpdatePurpose } from '../core/rollout/offer.js';
import type { RolloutState } from '../core/rollout/rollout-state.js';
import type { UpdateState } from '../core/update-state.js';
import type { ApiToken, UpdateAction } from './store.js';

export interface DevicesTable {
  id: string;
  name: string;
  firmware_version: string | null;
  /** Sortable encoding of firmware_version (see core/semver.ts): lets SQL compare versions as semver does. */
  firmware_key: string | null;
  hardware_type: string | null;
  location: string | null;
  timezone: string | null;
  customer: string | null;
  /** JSON object of tag key → value; device_tags holds the same pairs for indexed filtering. */
  tags: string;
  last_seen: number | null;
  /** The status last recorded by an event; the live status is always derived from last_seen. */
  recorded_status: DeviceStatus;
  created_at: number;
  updated_at: number;
  decommissioned_at: number | null;
  credential_hash: string | null;
  geo_lat: number | null;
  geo_lon: number | null;
  battery: number | null;
  signal_strength: number | null;
  device_time: string | null;
  metrics: string | null;
  /** 'accepted' | 'pending' | 'rejected' (core/admission.ts); devices from before migration 0017 are accepted. */
  admission: DeviceAdmission;
  /**
   * SHA-256 (hex) of what proves a tokenless requester is the same one asking again: its CSR's public key (SPKI
   * DER), or its request secret. Null for devices that never asked through the approval queue.
   */
  admission_key: string | null;
  /** 1 when the import pre-authorised the device: its first tokenless request is accepted at once. */
  preauthorized: number;
  /** Reboots and application crashes the agent reported since its running release was installed (0027). */
  reboots: number | null;
  app_crashes: number | null;
  /** 0040: the connectivity class the device resolved to and its figures (null: the server-wide ones). */
  connectivity_class: string | null;
  heartbeat_interval_ms: number | null;
  offline_after_ms: number | null;
  abandoned_after_ms: number | null;
}

export interface DeviceTagsTable {
  device_id: string;
  key: string;
  value: string;
}

export interface EventsTable {
  id: Generated<number>;
  at: number;
  type: string;
  device_id: string | null;
  rollout_id: string | null;
  actor: string | null;
  reason: string | null;
  data: string;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  token_hash: string;
  role: ApiToken['role'];
  created_at: number;
  revoked_at: number | null;
  /** 0019_principals: a filter expression limiting the token's devices; null: every device. */
  scope: ColumnType<string | null, string | null | undefined, string | null>;
  expires_at: ColumnType<number | null, number | null | undefined, number | null>;
  last_used_at: ColumnType<number | null, number | null | undefined, number | null>;
  created_by: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface UsersTable {
  id: string;
  name: string;
  /** argon2id, self-describing (parameters and salt in the string). */
  password_hash: string;
  role: string;
  scope: string | null;
  created_at: number;
  disabled_at: number | null;
}

export interface RolesTable {
  name: string;
  /** JSON array of permission names. */
  permissions: string;
  created_at: number;
}

export interface EnrollmentTokensTable {
  id: string;
  token_hash: string;
  uses_left: number | null;
  expires_at: number | null;
  /** JSON object of tags given to every device that enrolls with this token. */
  tags: string;
  created_at: number;
  revoked_at: number | null;
  /** Filter text naming the pre-registered devices the token may claim; null: new device ids only. */
  claim_filter: string | null;
}

export interface ReleasesTable {
  id: string;
  name: string;
  version: string;
  version_key: string;
  type: string;
  /** JSON array of compatible hardware types. */
  hardware: string;
  size: number;
  sha256: string;
  /** The canonical manifest text: exactly the bytes that were signed. */
  manifest: string;
  signature: string;
  key_id: string;
  allow_downgrade: number;
  created_at: number;
  /** Deleted releases keep their row for the history of the updates that used them; their blob is gone. */
  deleted_at: number | null;
}

export interface DeviceUpdatesTable {
  id: string;
  device_id: string;
  release_id: string;
  rollout_id: string | null;
  state: UpdateState;
  action: UpdateAction;
  /** The highest report sequence number accepted from the device: older or repeated reports change nothing. */
  last_seq: number;
  progress: number | null;
  error: string | null;
  attempts: number;
  /** The firmware the device ran when the update was assigned: what a rollback returns it to. */
  from_version: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  /** The rollout's phase (or rolling batch) this device belongs to; 0 outside rollouts. */
  phase: number;
  /** update: the release itself; switch: a blue-green switch to the staged slot; rollback: back to from_version. */
  purpose: UpdatePurpose;
  /** Not offered before this instant (retry backoff). */
  not_before: number | null;
  /** When the device was handed its download slot: the in-progress timeout counts from here. */
  granted_at: number | null;
  /** The device's value of the rollout's max_concurrent_per tag: slots are counted per value. */
  slot_key: string | null;
}

export interface RolloutsTable {
  id: string;
  name: string;
  release_id: string;
  /** The normalized spec document (JSON): every default spelled out. */
  spec: string;
  strategy: string;
  state: RolloutState;
  current_phase: number;
  /** JSON array: when each phase started (ms), by index. */
  phase_starts: string;
  /** JSON array of the latest gate decision per phase. */
  gates: string;
  /** The phase an operator approved moving on from (-1: none). */
  approved_phase: number;
  /** blue_green: an operator promoted (switch everywhere). */
  promoted: number;
  targets: number;
  /** Why the rollout halted or ended, when it did. */
  reason: string | null;
  created_by: string;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** The replica driving this rollout, until when (see engine/leases). */
  lease_owner: string | null;
  lease_until: number | null;
}

/** Counts by status at an instant: the fleet's online share over time. */
export interface FleetSnapshotsTable {
  at: number;
  total: number;
  online: number;
  offline: number;
  abandoned: number;
  unknown: number;
  decommissioned: number;
}

/** A webhook: where to POST events, which ones, and how far delivery has got (see store/shared/webhooks.ts). */
export interface WebhooksTable {
  id: string;
  url: string;
  /** The HMAC key for the signature header: kept as given, since the server must sign with it. */
  secret: string;
  /** JSON array of event type prefixes; empty means every event. */
  types: string;
  rollout_id: string | null;
  created_at: number;
  disabled_at: number | null;
  /** The id of the last event delivered (or passed over by the filter): delivery resumes after it. */
  cursor_event_id: number;
  /** Failed attempts since the last success. */
  failures: number;
  /** Not before this instant (ms); 0 when due at once. */
  next_attempt_at: number;
  last_error: string | null;
  last_delivered_at: number | null;
  /** The replica delivering it now, until lease_until: one replica at a time per webhook. */
  lease_owner: string | null;
  lease_until: number | null;
}

/** SQLite only: a rollout's updates counted by phase, purpose and state, kept by triggers (migration 0007). */
export interface RolloutCountsTable {
  rollout_id: string;
  phase: number;
  purpose: UpdatePurpose;
  state: UpdateState;
  n: number;
}

/** A device's status history for one UTC day whose raw events retention removed (core/rollout/status-days.ts). */
export interface DeviceStatusDaysTable {
  device_id: string;
  /** Days since 1970-01-01, UTC. */
  day: number;
  /** Bit h: online at some moment of UTC hour h. */
  online_hours: number;
  /** Bit h: online at the instant UTC hour h began. */
  start_hours: number;
  end_online: number;
  online_ms: number;
  changes: number;
}

/** One row (id 1): status history before `days_until` is read from device_status_days; the pruning lease. */
export interface EventRetentionTable {
  id: number;
  days_until: number;
  lease_owner: string | null;
  lease_until: number | null;
}

/** A replica driving rollouts, alive until `expires_at` unless it refreshes its row (shared/replicas.ts). */
export interface ReplicasTable {
  name: string;
  started_at: number;
  expires_at: number;
}

/** A device certificate: issued by FleetD's CA (`issuer` 'fleetd') or a trusted factory CA (its name). */
export interface DeviceCertificatesTable {
  serial: string;
  device_id: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  fingerprint: string;
  issuer: string;
  not_before: number;
  not_after: number;
  issued_at: number;
  revoked_at: number | null;
}

/** A manufacturer's CA whose device certificates are accepted and register their device on first contact. */
export interface TrustedCasTable {
  name: string;
  certificate_pem: string;
  /** SHA-256 of the CA certificate's DER, lowercase hex. */
  fingerprint: string;
  /** JSON object of tags given to every device registered by a certificate from this CA. */
  tags: string;
  /** Where a device's hardware type is read: `ou`, or `oid:<dotted OID>`. */
  hardware_from: string;
  /** 1: devices it registers wait for an operator's approval. */
  approve: number;
  added_at: number;
  removed_at: number | null;
}

/** One audit log entry (store/shared/audit-log.ts); JSON columns as text. */
export interface AuditLogTable {
  seq: number;
  at: number;
  actor: string | null;
  role: string | null;
  source: string | null;
  action: string;
  target: string;
  outcome: number;
  before: string | null;
  after: string | null;
  request_id: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

/** The audit chain's head (last seq and hash) and anchor (the last entry pruned); one row, id 1. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
  anchor_seq: number;
  anchor_hash: string;
}

/** A remote command an operator sent to devices (docs/remote-commands.md). */
export interface CommandsTable {
  id: string;
  kind: CommandKind;
  /** JSON of the command's fields (application, since, script and signature). */
  spec: string;
  created_at: number;
  expires_at: number;
  /** At most this many of its devices hold it delivered and unfinished at once. */
  max_concurrent: number;
  actor: string;
}

/** One device's run of a command, with its result. */
export interface CommandTargetsTable {
  command_id: string;
  device_id: string;
  state: CommandState;
  delivered_at: number | null;
  finished_at: number | null;
  exit_code: number | null;
  /** The tail of the output, at most MAX_COMMAND_OUTPUT characters. */
  output: string | null;
  output_truncated: number;
  error: string | null;
  /** collect-logs: the uploaded file, base64. */
  logs: string | null;
  logs_bytes: number | null;
}

/** A binary delta from one release's image to another's (docs/delta-updates.md); its bytes are a blob. */
export interface DeltasTable {
  id: string;
  source_release_id: string;
  target_release_id: string;
  tool: string;
  size: number;
  sha256: string;
  /** The canonical delta manifest: exactly the bytes that were signed. */
  manifest: string;
  signature: string;
  key_id: string;
  /** How long the build took, in milliseconds. */
  build_ms: number;
  created_at: number;
}

/** An abuse-limit count of one key in one fixed window, summed over the replicas (server/abuse/). */
export interface RateCountsTable {
  /** The limit's key: `enroll:<address>`, `authfail:<address>`, `device:<credential hash>`. */
  key: string;
  window_start: number;
  count: number;
  expires_at: number;
}

/** How the server delivers to a device without an agent (docs/agentless.md); `settings` is JSON, never secret. */
export interface DeviceDeliveryTable {
  device_id: string;
  method: string;
  settings: string;
  updated_at: number;
}

/** A dashboard session (0024_sessions): the cookie carries its secret, the row only the secret's hash. */
export interface SessionsTable {
  id: string;
  secret_hash: string;
  user_name: string;
  method: string;
  role: string;
  scope: string | null;
  created_at: number;
  last_used_at: number;
}

/** Failed sign-ins of one name (0024_sessions), known user or not, for the lock-out. */
export interface SignInFailuresTable {
  name: string;
  failures: number;
  first_at: number;
  locked_until: number | null;
}

export interface Database {
  connectivity_classes: ConnectivityClassesTable;
  rate_counts: RateCountsTable;
  trusted_cas: TrustedCasTable;
  deltas: DeltasTable;
  device_certificates: DeviceCertificatesTable;
  replicas: ReplicasTable;
  device_status_days: DeviceStatusDaysTable;
  event_retention: EventRetentionTable;
  rollout_counts: RolloutCountsTable;
  webhooks: WebhooksTable;
  fleet_snapshots: FleetSnapshotsTable;
  releases: ReleasesTable;
  device_updates: DeviceUpdatesTable;
  rollouts: RolloutsTable;
  devices: DevicesTable;
  device_tags: DeviceTagsTable;
  events: EventsTable;
  api_tokens: ApiTokensTable;
  enrollment_tokens: EnrollmentTokensTable;
  users: UsersTable;
  roles: RolesTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  commands: CommandsTable;
  command_targets: CommandTargetsTable;
  device_delivery: DeviceDeliveryTable;
  sessions: SessionsTable;
  sign_in_failures: SignInFailuresTable;
  telemetry_samples: TelemetrySamplesTable;
  telemetry_hourly: TelemetryHourlyTable;
  telemetry_latest: TelemetryLatestTable;
  device_inventory: DeviceInventoryTable;
  device_packages: DevicePackagesTable;
  device_groups: DeviceGroupsTable;
  group_members: GroupMembersTable;
  device_windows: DeviceWindowsTable;
  update_deferrals: UpdateDeferralsTable;
  config_documents: ConfigDocumentsTable;
  device_config: DeviceConfigTable;
  config_staged: ConfigStagedTable;
  config_releases: ConfigReleasesTable;
  config_rollouts: ConfigRolloutsTable;
  release_variants: ReleaseVariantsTable;
  metered_downloads: MeteredDownloadsTable;
  director_metadata: DirectorMetadataTable;
  group_windows: GroupWindowsTable;
  tag_windows: TagWindowsTable;
}

/** 0026_telemetry: raw samples, kept `rawMs` (docs/telemetry.md). */
export interface TelemetrySamplesTable {
  device_id: string;
  name: string;
  at: number;
  value: number;
}

/** Hourly aggregates, written as samples arrive (an upsert per sample), kept `hourlyMs`. */
export interface TelemetryHourlyTable {
  device_id: string;
  name: string;
  hour: number;
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** The latest value of each metric of each device: what `telemetry.<name>` filters read. */
export interface TelemetryLatestTable {
  device_id: string;
  name: string;
  value: number;
  at: number;
}

export interface DeviceInventoryTable {
  device_id: string;
  os: string | null;
  kernel: string | null;
  /** JSON array of {name, mac, addresses}. */
  interfaces: string;
  reported_at: number;
}

export interface DevicePackagesTable {
  device_id: string;
  name: string;
  version: string;
  /** packageVersionKey(version) (core/telemetry.ts); null when it is not a version. */
  version_key: string | null;
}

export type Timestamp = ColumnType<number, number, number>;

/** 0035_groups: a named group of devices; `filter` is set for dynamic groups only. */
export interface DeviceGroupsTable {
  id: string;
  name: string;
  description: string;
  kind: 'static' | 'dynamic';
  filter: string | null;
  created_at: number;
  updated_at: number;
}

/** A static group's devices. */
export interface GroupMembersTable {
  group_id: string;
  device_id: string;
}

/** 0036_device_windows: a device's own maintenance windows, honoured by rollouts with `window: device_defined`. */
export interface DeviceWindowsTable {
  device_id: string;
  /** JSON array of window documents (the rollout spec's `window` form). */
  windows: string;
  source: 'operator' | 'device';
  updated_by: string | null;
  updated_at: number;
}

/** A device's deferrals of one offered update, within its rollout's `deferral` budget. */
export interface UpdateDeferralsTable {
  update_id: string;
  device_id: string;
  rollout_id: string | null;
  count: number;
  first_at: number;
  deferred_until: number;
  updated_at: number;
}

/** 0039_shared_windows: a group's maintenance windows, taken by its devices without windows of their own. */
export interface GroupWindowsTable {
  group_id: string;
  /** JSON array of window documents (the rollout spec's `window` form). */
  windows: string;
  updated_by: string | null;
  updated_at: number;
}

/** A tag value's maintenance windows (`customer=acme`), taken by devices with neither own nor group windows. */
export interface TagWindowsTable {
  tag_key: string;
  tag_value: string;
  windows: string;
  updated_by: string | null;
  updated_at: number;
}

/** 0034_device_config: a configuration document (docs/configuration.md); `document` is its canonical JSON. */
export interface ConfigDocumentsTable {
  name: string;
  version: number;
  document: string;
  hash: string;
  /** Where it applies: null for every device (unless `device_id`), else a filter expression. */
  filter: string | null;
  device_id: string | null;
  /** The scope of the principal that set it: it applies within that scope only, and only that scope changes it. */
  scope: string | null;
  created_at: number;
  updated_at: number;
  updated_by: string;
}

/** 0043_config_staged: a document's staged version: set aside until released to devices or promoted. */
export interface ConfigStagedTable {
  name: string;
  version: number;
  document: string;
  hash: string;
  filter: string | null;
  device_id: string | null;
  scope: string | null;
  staged_at: number;
  staged_by: string;
}

/** A device a staged version was released to: it resolves that version instead of the document's current one. */
export interface ConfigReleasesTable {
  name: string;
  device_id: string;
  version: number;
  released_at: number;
  released_by: string;
}

/** 0044_config_rollouts: a staged configuration version rolled out phase by phase (core/config-rollout.ts). */
export interface ConfigRolloutsTable {
  id: string;
  name: string;
  version: number;
  /** JSON: the phases, `{percentage}` or `{devices}` each. */
  phases: string;
  soak_ms: number;
  max_failure_rate: number;
  promote: number;
  /** The document's scope: the releases and the promotion are made within it, its principals see it. */
  scope: string | null;
  state: string;
  /** The current phase, 0-based. */
  phase: number;
  /** JSON: when each phase started, so far. */
  phase_starts: string;
  reason: string | null;
  /** JSON: each phase's counts as the rollout ended (its releases go with the staged version). */
  final_counts: string | null;
  created_at: number;
  created_by: string;
  updated_at: number;
  lease_owner: string | null;
  lease_until: number | null;
}

/** A device's desired configuration as last resolved, and what its agent last reported. */
export interface DeviceConfigTable {
  device_id: string;
  desired_version: string | null;
  desired_hash: string | null;
  desired_at: number | null;
  applied_version: string | null;
  applied_hash: string | null;
  applied_at: number | null;
  /** The last report: `applied` or `failed`, for which hash, with the tail of the hook's output. */
  result: ConfigResult | null;
  result_hash: string | null;
  output: string | null;
  reported_at: number | null;
}

/** 0032_release_variants: a release's file for one update client (`.swu`, `.mender`); its bytes are a blob. */
export interface ReleaseVariantsTable {
  release_id: string;
  /** The client it is for: swupdate or mender (core/release-variants.ts). */
  client: string;
  size: number;
  sha256: string;
  created_at: number;
}

/** 0038_metered_downloads: a download granted on a metered link under a rollout's `metered_budget`. */
export interface MeteredDownloadsTable {
  device_id: string;
  update_id: string;
  granted_at: number;
  /** The bytes the grant may send: the release's size. */
  bytes: number;
}

/** 0042_director: the director's current signed metadata for each device; its versions only grow. */
export interface DirectorMetadataTable {
  device_id: string;
  targets_version: number;
  snapshot_version: number;
  timestamp_version: number;
  targets: string;
  snapshot: string;
  timestamp: string;
  updated_at: number;
}

/** 0040_connectivity_classes: heartbeat interval and thresholds per class of devices (core/connectivity.ts). */
export interface ConnectivityClassesTable {
  name: string;
  match_kind: 'hardware' | 'tag' | 'group';
  match_key: string | null;
  match_value: string;
  heartbeat_interval_ms: number;
  offline_after_ms: number;
  abandoned_after_ms: number;
  priority: number;
  updated_by: string | null;
  updated_at: number;
}
