/** The remote-configuration part of the storage port (docs/configuration.md): types and the interface only. */
import type { ConfigResult, ConfigTarget, JsonObject } from '../core/config-document.js';
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
