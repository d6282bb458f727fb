/**
 * Device telemetry and inventory (docs/telemetry.md): what a device reports besides its heartbeat, how long
 * it is kept, and the pure rules the store writes out (the hour a sample counts in, how a package version
 * compares). No I/O here.
 */
import { versionKey } from './semver.js';

export const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** One report of numeric metrics (cpu_pct, mem_used_pct, disk_free_pct, temp_c, uptime_s, reboots, custom ones). */
export type TelemetryMetrics = Record<string, number>;

export interface InstalledPackage {
  name: string;
  version: string;
}

export interface NetworkInterface {
  name: string;
  mac: string | null;
  addresses: string[];
}

/** The latest inventory a device reported: it replaces the previous one whole. */
export interface DeviceInventory {
  os: string | null;
  kernel: string | null;
  packages: InstalledPackage[];
  interfaces: NetworkInterface[];
  reportedAt: number;
}

/**
 * How long the series are kept: raw samples for `rawMs`, hourly aggregates for `hourlyMs`. A device may send
 * a report at most every `minIntervalMs` (a faster one is refused), which with the ages bounds the rows a
 * device can hold: rawMs / minIntervalMs raw samples and hourlyMs / 1 h aggregates per metric.
 */
export interface TelemetryRetention {
  rawMs: number;
  hourlyMs: number;
  minIntervalMs: number;
}

export const DEFAULT_TELEMETRY_RETENTION: TelemetryRetention = {
  rawMs: 2 * DAY_MS,
  hourlyMs: 90 * DAY_MS,
  minIntervalMs: 60_000,
};

/** The start of the hour a sample at `at` is aggregated in (UTC). */
export function hourOf(at: number): number {
  return Math.floor(at / HOUR_MS) * HOUR_MS;
}

/**
 * The sortable key of an installed package's version: the upstream part of a Debian version (no epoch
 * `1:`, no revision `-1~deb12u2`) read as semver leniently, so `inventory.package.openssl < 3.0.11` compares
 * 3.0.9-1 as 3.0.9. Null when the upstream part is not a version (then no order filter matches it).
 */
export function packageVersionKey(version: string): string | null {
  const noEpoch = version.replace(/^\d+:/, '');
  const dash = noEpoch.lastIndexOf('-');
  const upstream = dash > 0 ? noEpoch.slice(0, dash) : noEpoch;
  return versionKey(upstream.replace(/[+~].*$/, ''));
}

/** Kilometres per degree of latitude on a sphere of the Earth's mean radius (6,371 km). */
export const KM_PER_DEGREE = (6371 * Math.PI) / 180;

/**
 * `location near (lat, lon, r)`: the squared distance in km² from a centre, on the equirectangular
 * projection around the centre's latitude. Plain arithmetic, so SQL on both databases computes exactly the
 * same number as this (no trigonometry in SQLite); within 1 % of the great-circle distance for radii up to a
 * few hundred km away from the poles. `lonScale` is KM_PER_DEGREE * cos(centre latitude).
 */
export function nearDistanceSq(
  lat: number,
  lon: number,
  centreLat: number,
  centreLon: number,
  lonScale: number,
): number {
  const dy = (lat - centreLat) * KM_PER_DEGREE;
  const dx = (lon - centreLon) * lonScale;
  return dy * dy + dx * dx;
}

export function lonScaleAt(latitude: number): number {
  return KM_PER_DEGREE * Math.cos((latitude * Math.PI) / 180);
}
