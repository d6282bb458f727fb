/**
 * The operator API's JSON, as the dashboard reads it: the types come from the protocol's schemas
 * (src/protocol/), so the dashboard cannot drift from what the server sends. Type-only imports: nothing of
 * the server's code is bundled. The lists below are the dashboard's display orders.
 */
import type { DeviceStatus } from '../../src/core/device.js';
import type { RolloutState } from '../../src/core/rollout/rollout-state.js';
import type { UpdateState } from '../../src/core/update-state.js';
import type { AdmissionReplyJson, WaitingReplyJson } from '../../src/protocol/admission.js';
import type {
  DeviceJson,
  DevicePageJson,
  EventJson,
  HistoryReplyJson,
  StatsJson,
} from '../../src/protocol/operator-api.js';
import type { ReleaseJson, UpdateJson } from '../../src/protocol/releases.js';
import type { GateJson, PhaseJson, PlanJson, RolloutJson } from '../../src/protocol/rollouts.js';

export type { DeviceStatus, RolloutState, UpdateState };

export const DEVICE_STATUSES = [
  'online',
  'offline',
  'unknown',
  'abandoned',
  'decommissioned',
] as const satisfies readonly DeviceStatus[];

export type Device = DeviceJson;
export type DevicePage = DevicePageJson;
export type FleetStats = StatsJson;
export type HistorySnapshot = HistoryReplyJson['snapshots'][number];
export type FleetEvent = EventJson;
export type Release = ReleaseJson;
export type WaitingDevices = WaitingReplyJson;
export type AdmissionReply = AdmissionReplyJson;

export const UPDATE_STATES = [
  'pending',
  'scheduled',
  'notified',
  'downloading',
  'installing',
  'verifying',
  'succeeded',
  'failed',
  'rolled_back',
  'cancelled',
  'skipped',
] as const satisfies readonly UpdateState[];

export type DeviceUpdate = UpdateJson;

export const ROLLOUT_STATES = [
  'draft',
  'scheduled',
  'running',
  'paused',
  'halted',
  'completed',
  'cancelled',
  'rolled_back',
] as const satisfies readonly RolloutState[];

export type Counts = Partial<Record<string, number>>;
export type Gate = GateJson;
export type RolloutPhase = PhaseJson;
export type Eta = NonNullable<RolloutJson['eta']>;
export type Rollout = RolloutJson;
export type Plan = PlanJson;

export type {
  InventoryJsonReply as DeviceInventory,
  TelemetrySeriesJson as DeviceTelemetrySeries,
} from '../../src/protocol/telemetry.js';
export type TelemetryPointJson =
  import('../../src/protocol/telemetry.js').TelemetrySeriesJson['series'][number]['points'][number];
