/** The operator API's JSON, as the dashboard reads it (see src/server/schemas.ts and the rollouts contract). */

export const DEVICE_STATUSES = ['online', 'offline', 'unknown', 'abandoned', 'decommissioned'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export interface Device {
  id: string;
  name: string;
  status: DeviceStatus;
  firmware_version: string | null;
  hardware_type: string | null;
  location: string | null;
  timezone: string | null;
  customer: string | null;
  tags: Record<string, string>;
  last_seen: string | null;
  created_at: string;
  decommissioned_at: string | null;
  enrolled: boolean;
  telemetry: {
    lat: number | null;
    lon: number | null;
    battery: number | null;
    signal_strength: number | null;
    device_time: string | null;
    metrics: Record<string, unknown>;
  };
}

export interface DevicePage {
  devices: Device[];
  next_cursor: string | null;
}

export interface FleetStats {
  total: number;
  by_status: Record<DeviceStatus, number>;
  firmware: Array<{ version: string | null; count: number }>;
  hardware: Array<{ hardware_type: string | null; count: number }>;
  tags: Record<string, Record<string, number>>;
  silent: { over_24h: number; over_30d: number };
  at: string;
}

export interface HistorySnapshot {
  at: string;
  total: number;
  by_status: Record<DeviceStatus, number>;
}

export interface FleetEvent {
  id: number;
  at: string;
  type: string;
  device_id: string | null;
  rollout_id: string | null;
  actor: string | null;
  reason: string | null;
  data: Record<string, unknown>;
}

export interface Release {
  id: string;
  name: string;
  version: string;
  type: string;
  hardware: string[];
  size: number;
  sha256: string;
  key_id: string;
  allow_downgrade: boolean;
  created_at: string;
}

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
] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

export interface DeviceUpdate {
  id: string;
  device_id: string;
  release_id: string;
  rollout_id: string | null;
  state: string;
  action: string;
  progress: number | null;
  error: string | null;
  attempts: number;
  from_version: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export const ROLLOUT_STATES = [
  'draft',
  'scheduled',
  'running',
  'paused',
  'halted',
  'completed',
  'cancelled',
  'rolled_back',
] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

export type Counts = Partial<Record<string, number>>;

export interface Gate {
  decision: 'wait' | 'pass' | 'halt' | 'await_approval';
  reason: string;
  at: string;
}

export interface RolloutPhase {
  name: string;
  percentage: number;
  devices: number;
  started_at: string | null;
  counts: Counts;
  success_rate: number | null;
  threshold: number | null;
  gate: Gate | null;
}

export interface Eta {
  finish_at: string | null;
  unknown_devices: number;
  phases: Array<{ name: string; start_at: string | null; gate_at: string | null; finish_at: string | null }>;
}

export interface Rollout {
  id: string;
  name: string;
  state: RolloutState;
  strategy: string;
  release: string;
  filter: string;
  spec: Record<string, unknown>;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  reason: string | null;
  current_phase: number | null;
  phases: RolloutPhase[];
  totals: { targets: number; counts: Counts; success_rate: number | null };
  throughput_per_hour: number | null;
  eta: Eta | null;
  failing: Array<{ device_id: string; error: string | null; at: string }>;
}

export interface Plan {
  targets: number;
  online: number;
  offline: number;
  by_status: Counts;
  skipped: Array<{ device_id: string; reason: string }>;
  phases: Array<{ name: string; percentage: number; devices: number; online: number; sample: string[] }>;
  windows: Array<{
    timezone: string;
    devices: number;
    opens_at: string | null;
    closes_at: string | null;
    opens_local: string | null;
    closes_local: string | null;
  }>;
  eta: Eta | null;
  timeline: Array<{ at: string; what: string }>;
  spec: Record<string, unknown>;
}
