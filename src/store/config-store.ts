/** The remote-configuration part of the storage port (docs/configuration.md): types and the interface only. */
import type { ConfigResult, ConfigTarget, JsonObject } from '../core/config-document.js';
import type { FilterNode } from '../core/filter/index.js';
import type { TimeContext } from './store.js';

/** A configuration document as stored (docs/configuration.md). */
export interface ConfigDocumentRecord {
  name: string;
  version: number;
  hash: string;
  document: JsonObject;
  target: ConfigTarget;
  /** The scope it was set under: it applies within it only, and only a principal of that scope changes it. */
  scope: string | null;
  createdAt: number;
  updatedAt: number;
  updatedBy: string;
}

export interface NewConfigDocument {
  name: string;
  document: JsonObject;
  target: ConfigTarget;
  scope: string | null;
}

/**
 * A document's staged version (docs/configuration.md, "Staged versions"): it reaches only the devices it was
 * released to until it is promoted. `progress` counts those devices and what they reported on it.
 */
export interface StagedConfigRecord {
  name: string;
  version: number;
  hash: string;
  document: JsonObject;
  target: ConfigTarget;
  scope: string | null;
  stagedAt: number;
  stagedBy: string;
  /** The document's current version, which every other device keeps; null for a document not promoted yet. */
  currentVersion: number | null;
  progress: StagedProgress;
}

/** Of the devices a staged version was released to: how many applied it, failed it, or have not reported yet. */
export interface StagedProgress {
  released: number;
  applied: number;
  failed: number;
}

/** Which of the devices a staged version reaches to release it to: all, those of a filter, one; at most `count`. */
export interface ReleaseSelection {
  filter?: FilterNode;
  deviceId?: string;
  count?: number;
}

/** What a heartbeat answer carries: the desired version and hash, and the document while the device lacks it. */
export interface ConfigOffer {
  version: string;
  hash: string;
  document?: JsonObject;
}

export interface ConfigReport {
  version: string;
  hash: string;
  result: ConfigResult;
  output?: string;
}

/** One device's desired configuration next to what it reported. */
export interface DeviceConfigState {
  deviceId: string;
  desired: { version: string; hash: string; at: number } | null;
  applied: { version: string; hash: string; at: number } | null;
  last: { result: ConfigResult; hash: string; output: string | null; at: number } | null;
  drift: boolean;
}

/**
 * Remote configuration: documents set and removed with their events, each device's desired configuration resolved
 * (merged in core/config-document.ts's order) when a document changes and on its heartbeats, and its reports.
 */
export interface ConfigStore {
  /**
   * Sets a document: a new version when its content or target changed (`changed`), else nothing. A scoped setter
   * may not replace a document set under another scope (FORBIDDEN); a device target must exist.
   */
  set(
    document: NewConfigDocument,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ document: ConfigDocumentRecord; changed: boolean }>;
  /**
   * Stages a version of a document: no device's desired configuration changes until it is released to it. The
   * same content and target staged again changes nothing; anything else replaces the staged version (its
   * releases dropped). Setting a document (`set`) drops its staged version.
   */
  stage(
    document: NewConfigDocument,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ staged: StagedConfigRecord; changed: boolean }>;
  staged(name: string): Promise<StagedConfigRecord | undefined>;
  listStaged(): Promise<StagedConfigRecord[]>;
  /**
   * Releases staged version `version` of `name` to the selected devices it reaches that do not hold it yet; they
   * are resolved at once. NOT_FOUND without a staged version, CONFLICT when another version is staged.
   */
  release(
    name: string,
    version: number,
    selection: ReleaseSelection,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ released: number; staged: StagedConfigRecord }>;
  /** The staged version becomes the document's current version, for every device (errors as for `release`). */
  promote(
    name: string,
    version: number,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<ConfigDocumentRecord>;
  /** Drops the staged version: the devices it was released to go back to the current one. */
  unstage(
    name: string,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<StagedConfigRecord | undefined>;
  list(): Promise<ConfigDocumentRecord[]>;
  get(name: string): Promise<ConfigDocumentRecord | undefined>;
  /** Removes a document (FORBIDDEN across scopes as for `set`); undefined when there was none. */
  remove(
    name: string,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<ConfigDocumentRecord | undefined>;
  /** Resolves these devices' desired configuration (a heartbeat batch) and what to hand each. */
  offers(deviceIds: readonly string[], ctx: TimeContext): Promise<Map<string, ConfigOffer>>;
  /** One device's state, resolved now; undefined for an unknown device. */
  ofDevice(deviceId: string, ctx: TimeContext): Promise<DeviceConfigState | undefined>;
  /**
   * These devices' configuration as last resolved (a page of a device listing), in one query without resolving
   * again: a device without a row is left out.
   */
  statesOf(deviceIds: readonly string[]): Promise<Map<string, DeviceConfigState>>;
  /** A device's report of applying (or failing to apply) a configuration, with its event. */
  report(deviceId: string, report: ConfigReport, ctx: TimeContext): Promise<DeviceConfigState>;
}
