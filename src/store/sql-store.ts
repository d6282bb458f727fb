/**
 * The Store port assembled from the shared SQL (shared/) and one database's adapter (sqlite/adapter.ts,
 * postgres/adapter.ts): every operation runs the adapter's native path when it has one, the shared code
 * otherwise. Nothing here knows which database it runs on.
 */
import type { Kysely } from 'kysely';
import type { Device, DeviceRecord } from '../core/device.js';
import type { FilterNode } from '../core/filter/index.js';
import type { DialectAdapter, SqlContext } from './adapter.js';
import type { Dialect } from './migrations.js';
import type { Database } from './schema.js';
import { SqlAdmission } from './shared/admission.js';
import { SqlAuditLog } from './shared/audit-log.js';
import { SqlCertificates } from './shared/certificates.js';
import { SqlCommands } from './shared/commands.js';
import { SqlConfig } from './shared/config.js';
import { SqlConfigRollouts } from './shared/config-rollouts.js';
import { SqlConnectivity } from './shared/connectivity.js';
import { SqlDelivery } from './shared/delivery.js';
import { SqlDeltas } from './shared/deltas.js';
import { SqlDeviceWindows } from './shared/device-windows.js';
import * as devices from './shared/devices.js';
import { SqlDirectorMetadata } from './shared/director-metadata.js';
import { enroll } from './shared/enroll.js';
import { SqlEventRetention } from './shared/event-retention.js';
import * as events from './shared/events.js';
import * as fleet from './shared/fleet-stats.js';
import { SqlGroups } from './shared/groups.js';
import { recordHeartbeats } from './shared/heartbeats.js';
import { SqlPrincipals } from './shared/principals.js';
import { SqlRateCounts } from './shared/rate-counts.js';
import { SqlReleaseVariants } from './shared/release-variants.js';
import { SqlReleases } from './shared/releases.js';
import { SqlReplicas } from './shared/replicas.js';
import { SqlRollouts } from './shared/rollout-rows.js';
import { SqlSessions } from './shared/sessions.js';
import { sweepStatuses } from './shared/sweep.js';
import { SqlTags } from './shared/tags.js';
import { SqlTelemetry } from './shared/telemetry.js';
import * as tokens from './shared/tokens.js';
import { SqlTrustedCas } from './shared/trusted-cas.js';
import { SqlUpdates } from './shared/updates.js';
import { SqlWebhooks } from './shared/webhooks.js';
import type {
  ApiToken,
  DevicePage,
  DeviceQuery,
  Enrollment,
  EnrollmentToken,
  EnrollmentTokenInfo,
  EventQuery,
  FleetSnapshot,
  FleetStats,
  HeartbeatOutcome,
  ImportResult,
  NewEvent,
  PresentedHeartbeat,
  StatusTransition,
  Store,
  StoredEvent,
  TimeContext,
} from './store.js';

export class SqlStore implements Store, SqlContext {
  readonly releases: SqlReleases;
  readonly updates: SqlUpdates;
  readonly rollouts: SqlRollouts;
  readonly webhooks: SqlWebhooks;
  readonly retention: SqlEventRetention;
  readonly replicas: SqlReplicas;
  readonly certificates: SqlCertificates;
  readonly admission: SqlAdmission;
  readonly trustedCas: SqlTrustedCas;
  readonly principals: SqlPrincipals;
  readonly audit: SqlAuditLog;
  readonly tags: SqlTags;
  readonly commands: SqlCommands;
  readonly deltas: SqlDeltas;
  readonly rateCounts: SqlRateCounts;
  readonly delivery: SqlDelivery;
  readonly sessions: SqlSessions;
  readonly telemetry: SqlTelemetry;
  readonly groups: SqlGroups;
  readonly deviceWindows: SqlDeviceWindows;
  readonly config: SqlConfig;
  readonly configRollouts: SqlConfigRollouts;
  readonly connectivity: SqlConnectivity;
  readonly variants: SqlReleaseVariants;
  readonly director: SqlDirectorMetadata;

  constructor(
    readonly db: Kysely<Database>,
    readonly adapter: DialectAdapter,
  ) {
    this.releases = new SqlReleases(db);
    this.updates = new SqlUpdates(this);
    this.rollouts = new SqlRollouts(this);
    this.webhooks = new SqlWebhooks(db);
    this.retention = new SqlEventRetention(db);
    this.replicas = new SqlReplicas(db);
    this.certificates = new SqlCertificates(db);
    this.admission = new SqlAdmission(this);
    this.trustedCas = new SqlTrustedCas(db);
    this.principals = new SqlPrincipals(db);
    this.audit = new SqlAuditLog(db);
    this.tags = new SqlTags(this);
    this.commands = new SqlCommands(this);
    this.deltas = new SqlDeltas(db);
    this.rateCounts = new SqlRateCounts(db);
    this.delivery = new SqlDelivery(db);
    this.sessions = new SqlSessions(db);
    this.telemetry = new SqlTelemetry(this);
    this.groups = new SqlGroups(this);
    this.deviceWindows = new SqlDeviceWindows(this);
    this.config = new SqlConfig(this);
    this.configRollouts = new SqlConfigRollouts(this);
    this.connectivity = new SqlConnectivity(this);
    this.variants = new SqlReleaseVariants(db);
    this.director = new SqlDirectorMetadata(db);
  }

  get dialect(): Dialect {
    return this.adapter.dialect;
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.adapter.close?.();
  }

  async importDevices(
    records: DeviceRecord[],
    ctx: TimeContext,
    actor: string,
    preauthorized: ReadonlySet<string> = new Set(),
  ): Promise<ImportResult> {
    const native = this.adapter.native?.importDevices;
    const result = await (native
      ? native(records, ctx, actor)
      : devices.importDevices(this, records, ctx, actor));
    // A second transaction: a crash between the two leaves the devices imported but not yet pre-authorised, and
    // importing the file again (idempotent) finishes it.
    await this.admission.preauthorize(preauthorized, ctx, actor);
    return result;
  }

  getDevice(id: string, ctx: TimeContext): Promise<Device | undefined> {
    return devices.getDevice(this, id, ctx);
  }

  async listDevices(query: DeviceQuery): Promise<DevicePage> {
    return devices.listDevices(this, { ...query, filter: await this.groups.expand(query.filter) });
  }

  async countDevices(filter: FilterNode | undefined, ctx: TimeContext): Promise<number> {
    return devices.countDevices(this, await this.groups.expand(filter), ctx);
  }

  decommissionDevice(id: string, ctx: TimeContext, actor: string): Promise<Device> {
    return devices.decommissionDevice(this, id, ctx, actor);
  }

  setCredential(id: string, credentialHash: string, ctx: TimeContext, actor: string): Promise<void> {
    return devices.setCredential(this, id, credentialHash, ctx, actor);
  }

  setCredentials(
    credentials: ReadonlyArray<{ id: string; credentialHash: string }>,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ set: number; refused: string[] }> {
    const native = this.adapter.native?.setCredentials;
    return native ? native(credentials, ctx, actor) : devices.setCredentials(this, credentials, ctx, actor);
  }

  credentialHash(id: string): Promise<string | undefined> {
    return devices.credentialHash(this, id);
  }

  enroll(enrollment: Enrollment, ctx: TimeContext): Promise<Device> {
    return enroll(this, enrollment, ctx);
  }

  recordHeartbeats(batch: PresentedHeartbeat[], ctx: TimeContext): Promise<HeartbeatOutcome[]> {
    const native = this.adapter.native?.recordHeartbeats;
    return native ? native(batch, ctx) : recordHeartbeats(this, batch, ctx);
  }

  sweepStatuses(ctx: TimeContext, since?: number): Promise<StatusTransition[]> {
    const native = this.adapter.native?.sweepStatuses;
    return native ? native(ctx, since) : sweepStatuses(this, ctx, since);
  }

  recordFleetSnapshot(ctx: TimeContext): Promise<FleetSnapshot>;
  recordFleetSnapshot(ctx: TimeContext, minGapMs: number): Promise<FleetSnapshot | undefined>;
  recordFleetSnapshot(ctx: TimeContext, minGapMs?: number): Promise<FleetSnapshot | undefined> {
    return fleet.recordFleetSnapshot(this, ctx, minGapMs);
  }

  fleetHistory(since: number, until: number): Promise<FleetSnapshot[]> {
    return fleet.fleetHistory(this, since, until);
  }

  async fleetStats(
    filter: FilterNode | undefined,
    tagKeys: string[] | undefined,
    ctx: TimeContext,
  ): Promise<FleetStats> {
    return fleet.fleetStats(this, await this.groups.expand(filter), tagKeys, ctx);
  }

  appendEvents(list: NewEvent[]): Promise<void> {
    return events.appendEvents(this.db, list);
  }

  lastEventId(): Promise<number> {
    return events.lastEventId(this.db);
  }

  listEvents(query: EventQuery): Promise<StoredEvent[]> {
    return events.listEvents(this.db, query);
  }

  createApiToken(token: ApiToken, tokenHash: string): Promise<void> {
    return tokens.insertApiToken(this.db, token, tokenHash);
  }

  findApiToken(tokenHash: string): Promise<ApiToken | undefined> {
    return tokens.findApiToken(this.db, tokenHash);
  }

  countApiTokens(): Promise<number> {
    return tokens.countApiTokens(this.db);
  }

  createEnrollmentToken(token: EnrollmentToken, tokenHash: string, actor: string): Promise<void> {
    return tokens.createEnrollmentToken(this.db, token, tokenHash, actor);
  }

  listEnrollmentTokens(): Promise<EnrollmentTokenInfo[]> {
    return tokens.listEnrollmentTokens(this.db);
  }

  revokeEnrollmentToken(id: string, at: number, actor: string): Promise<void> {
    return tokens.revokeEnrollmentToken(this.db, id, at, actor);
  }

  replaceApiToken(token: ApiToken, tokenHash: string, actor: string): Promise<number> {
    return tokens.replaceApiToken(this.db, token, tokenHash, actor);
  }
}
