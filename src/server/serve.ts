/**
 * The composition root: the one place that wires the store, clock, batchers, sweeper, keyring, blobs, engine,
 * webhooks, MQTT, TLS (tls.ts) and the Fastify app into a server. `fleetd server` starts it (startServer), the
 * simulator drives it idle (createServer), and the tests build their in-process app through it too
 * (test/support/app.ts), so what is tested is what runs.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { BlobScrubber } from '../artifacts/blob-scrubber.js';
import { FsBlobStore } from '../artifacts/blob-store.js';
import type { DeltaBuilder } from '../artifacts/delta-builder.js';
import { DirectorRepository } from '../artifacts/director/director-repository.js';
import { TufPublisher } from '../artifacts/tuf/tuf-publisher.js';
import { TufRepository } from '../artifacts/tuf/tuf-repository.js';
import { type Clock, systemClock } from '../core/clock.js';
import type { DeltaTool } from '../core/delta.js';
import { DEFAULT_THRESHOLDS, type StatusThresholds } from '../core/device.js';
import { FleetError } from '../core/errors.js';
import { DEFAULT_TELEMETRY_RETENTION, type TelemetryRetention } from '../core/telemetry.js';
import type { PacingTime } from '../core/token-bucket.js';
import { DIRECTOR_ROOT } from '../engine/alert-conditions.js';
import { AlertEvaluator } from '../engine/alert-evaluator.js';
import { ConfigRolloutDriver } from '../engine/config-rollout-driver.js';
import { RolloutEngine } from '../engine/rollout-engine.js';
import { DEFAULT_RETENTION, EventPruner } from '../events/event-pruner.js';
import { WebhookDispatcher } from '../events/webhook-dispatcher.js';
import { CA_CERTIFICATE_FILE } from '../pki/authority.js';
import { HeartbeatBatcher } from '../registry/heartbeat-batcher.js';
import { ReportBatcher } from '../registry/report-batcher.js';
import { StatusSweeper } from '../registry/status-sweeper.js';
import { TelemetryPruner } from '../registry/telemetry-pruner.js';
import { databaseBytes, openStore } from '../store/open.js';
import type { RetentionPolicy, Store } from '../store/store.js';
import { type MqttSettings, type RunningMqtt, startMqtt } from '../transport/service.js';
import type { AbuseLimits } from './abuse/abuse-limits.js';
import { ADMIN_TOKEN_FILE, ensureAdminToken } from './admin-token.js';
import { AlertRulesFile, readAlertRules } from './alert-rules-file.js';
import { buildApp } from './app.js';
import { AuditPruner } from './audit/audit-pruner.js';
import type { AuthFailureWatchOptions } from './audit/auth-failure-watch.js';
import type { DeviceAuthMode, EnrollmentMode } from './context.js';
import { dataFolderWarning } from './data-folder.js';
import { DeliveryKey } from './delivery/delivery-key.js';
import { DeliveryWorker } from './delivery/delivery-worker.js';
import { deltaBuilder } from './delta-setup.js';
import { DeviceCertificates } from './device-certificates.js';
import type { EgressLimit } from './egress-limit.js';
import { FACTORY_CA_POLL_MS, FactoryCas } from './factory-cas.js';
import { Keyring } from './keyring.js';
import { menderTokenKey } from './mender-auth.js';
import { readMetricsToken } from './metrics/metrics-token.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { type OidcOptions, OidcSignIn } from './sessions/oidc-sign-in.js';
import type { SignInPolicies } from './sessions/password-sign-in.js';
import type { SignedArtifactUrls } from './signed-artifact-urls.js';
import { assertListenerAllowed, type ListenerTls, PKI_DIR, prepareTls, type TlsSource } from './tls.js';

const TLS_RENEWAL_CHECK_MS = 24 * 3600_000;

export interface ServerOptions {
  port?: number;
  host?: string;
  dataDir?: string;
  /** postgres:// URL or SQLite file; default `<dataDir>/fleetd.db`. */
  db?: string | undefined;
  sqliteSync?: 'normal' | 'full';
  /** With `db: ':memory:'`, the database image to start from (an in-memory server restarted in-process). */
  sqliteImage?: Buffer | undefined;
  clock?: Clock;
  thresholds?: StatusThresholds;
  heartbeatIntervalSec?: number;
  sweepIntervalMs?: number;
  logLevel?: string;
  /** Sign releases with the server's own key (made on first start); false keeps signing offline only. */
  serverSigning?: boolean;
  /** Public keys whose offline signatures are accepted. */
  trustedKeyFiles?: string[];
  maxArtifactBytes?: number;
  /** Internal nginx location serving `<data>/blobs` (X-Accel-Redirect); unset: FleetD sends the bytes. */
  artifactOffload?: string | undefined;
  /** How often the rollout engine reconciles (default 1 s). */
  engineIntervalMs?: number;
  /**
   * How long a replica's hold on a rollout lasts without renewal (default 30 s): when a replica dies, another
   * takes its rollouts over this long after its last tick. Renewed on every tick, so much longer than a tick.
   */
  leaseMs?: number;
  /** This replica's name for rollout leases (default host:pid:random). */
  replicaId?: string;
  /** How often due webhooks are looked for (default 1 s). */
  webhookIntervalMs?: number;
  /** How long a webhook receiver has to answer (default 10 s). */
  webhookTimeoutMs?: number;
  /** Webhooks may target loopback, private and link-local addresses (default false: public ones only). */
  webhookAllowPrivate?: boolean;
  /** Devices over MQTT (docs/mqtt.md): the embedded broker or an external one; off when unset. */
  mqtt?: MqttSettings | undefined;
  /** Average bytes per second the background scrub re-hashes stored artifacts at (default 4 MiB/s; 0: off). */
  scrubBytesPerSec?: number;
  /** How often the scrub (and the sweep of orphaned upload temp files) runs (default 10 s). */
  scrubIntervalMs?: number;
  /** An opened store to run on instead of opening `db` (tests: a store of each backend); closed with the server. */
  store?: Store | undefined;
  /** The blob store, in place of a plain one in the data folder (tests inject failures with it). */
  blobs?: ((dataDir: string, clock: Clock) => FsBlobStore) | undefined;
  /** Where log lines go (default stdout). */
  logStream?: { write(line: string): void } | undefined;
  /** The built dashboard's folder (default `dist/web` of the package). */
  webRoot?: string | undefined;
  /** How long and how many events are kept (default 90 days, no count bound; docs/operations.md). */
  retention?: RetentionPolicy;
  /** How often old events are pruned (default 10 min). */
  pruneIntervalMs?: number;
  /** `mtls`: devices by client certificate only (`--device-auth`; default `any`: certificate or credential). */
  deviceAuth?: DeviceAuthMode;
  /** `approve`: tokenless enrollment waits in the approval queue (`--enrollment`; default `token`). */
  enrollment?: EnrollmentMode;
  /** The hawkBit tenant in the DDI API's paths (`--ddi-tenant`; default `DEFAULT`). */
  ddiTenant?: string;
  /** How long a device certificate is valid (`--device-cert-validity`; default 90 days). */
  deviceCertValidityMs?: number;
  /** TLS for the HTTP listener (docs/tls.md): certificate files, or `auto` (issued by the FleetD CA); plain HTTP when unset. */
  tls?: TlsSource | undefined;
  /** Plain HTTP on an address other than loopback, which is refused without it. */
  insecureHttp?: boolean;
  /** How often another replica's change to the trusted factory CAs is looked for (default 10 s). */
  factoryCaPollMs?: number;
  /** Rate limits on enrollment, the device API and failed authentication (docs/audit.md). */
  abuseLimits?: AbuseLimits | undefined;
  /** How failed authentication is recorded in bounded amounts (docs/audit.md). */
  authFailureWatch?: AuthFailureWatchOptions | undefined;
  /** Dashboard session lifetimes and the sign-in lock-out (docs/access.md). */
  signIn?: SignInPolicies | undefined;
  /** Dashboard sign-in with OpenID Connect (`--oidc-issuer`, `--oidc-client-id`, `--oidc-roles`). */
  oidc?: OidcOptions | undefined;
  /** The same, made already (tests hand in one of their own). */
  oidcSignIn?: OidcSignIn | undefined;
  /** How long audit entries are kept (`--retain-audit`; default: for ever); pruned every `pruneIntervalMs`. */
  auditRetentionMs?: number | null | undefined;
  /** A file holding the token that may read GET /metrics (besides an admin token); docs/monitoring.md. */
  metricsTokenFile?: string | undefined;
  /** How long /metrics reuses its fleet-wide figures (default 10 s). */
  metricsCacheMs?: number;
  /** The alert rules file (YAML, docs/alerts.md); no alert rules when unset. */
  alertRulesFile?: string | undefined;
  /** Alert rules are evaluated on the engine tick, at most this often (default 15 s). */
  alertIntervalMs?: number;
  /** The tool binary deltas are built with (docs/delta-updates.md); `off`: none are built. Default xdelta3. */
  deltaTool?: DeltaTool | 'off';
  /** Delta builds at once (default 1, at most 2). */
  deltaConcurrency?: number;
  /** How often the TUF metadata is checked for re-signing (default 1 min; what is due follows the clock). */
  tufIntervalMs?: number;
  /** Keep a copy of the public TUF metadata in this folder, for a CDN to serve (docs/signing.md). */
  tufMirrorDir?: string | undefined;
  /** Serve the Mender device API at /api/devices (docs/clients/mender.md; default true). */
  menderApi?: boolean;
  /** Public keys (PEM files) a signed Mender artifact must verify with (`--mender-artifact-key`). */
  menderArtifactKeyFiles?: string[];
  /** How often agentless devices' offers are looked at (default 5 s; docs/agentless.md). */
  deliveryIntervalMs?: number;
  /** Agentless deliveries at once on this replica (default 4). */
  deliveryConcurrency?: number;
  /** The file holding the passphrase of the delivery SSH key (default: one generated in `<data>/delivery`). */
  deliveryKeyPassphraseFile?: string | undefined;
  /** Signed, expiring artifact links on a cache's origin (docs/serving-artifacts.md); off when unset. */
  signedUrls?: SignedArtifactUrls | undefined;
  /** The fleet-wide egress cap on artifact bytes this server sends (`--egress-cap`; docs/bandwidth.md). */
  egress?: EgressLimit | undefined;
  /** The time per-download rate limits are paced by: real when unset; tests pass virtual time. */
  pacing?: PacingTime | undefined;
  /** How long telemetry is kept and how often a device may report (docs/telemetry.md; default 48 h, 90 days, 1 min). */
  telemetryRetention?: TelemetryRetention | undefined;
}

export interface RunningServer {
  app: FastifyInstance;
  store: Store;
  url: string;
  /** Set when this start created the admin token. */
  adminToken: string | undefined;
  adminTokenFile: string;
  sweeper: StatusSweeper;
  engine: RolloutEngine;
  webhooks: WebhookDispatcher;
  scrubber: BlobScrubber;
  pruner: EventPruner;
  factoryCas: FactoryCas;
  metrics: ServerMetrics;
  /** Undefined without an alert rules file. */
  alerts: AlertEvaluator | undefined;
  /** Undefined when MQTT is off (or its default port was taken). */
  mqtt: RunningMqtt | undefined;
  /** Undefined when the listener speaks plain HTTP. */
  tls: ListenerTls | undefined;
  /** Builds binary deltas in the background; undefined with `deltaTool: 'off'`. */
  deltas: DeltaBuilder | undefined;
  /** Undefined when no TUF root is installed. */
  tuf: TufPublisher | undefined;
  /** Delivers updates to agentless devices (SSH, HTTP push). */
  delivery: DeliveryWorker;
  close(): Promise<void>;
}

/** Everything a server is made of, built but idle: no socket, no timers (the simulator drives it itself). */
export interface ServerParts {
  app: FastifyInstance;
  store: Store;
  clock: Clock;
  thresholds: StatusThresholds;
  adminToken: string | undefined;
  adminTokenFile: string;
  sweeper: StatusSweeper;
  engine: RolloutEngine;
  /** Steps the configuration rollouts after each engine pass. */
  configRollouts: ConfigRolloutDriver;
  webhooks: WebhookDispatcher;
  scrubber: BlobScrubber;
  pruner: EventPruner;
  heartbeats: HeartbeatBatcher;
  reports: ReportBatcher;
  keyring: Keyring;
  /** Trusted factory CAs; `refresh()` picks up another replica's change (startServer polls it). */
  factoryCas: FactoryCas;
  /** Undefined when the listener speaks plain HTTP. */
  tls: ListenerTls | undefined;
  metrics: ServerMetrics;
  /** Undefined without an alert rules file. */
  alerts: AlertEvaluator | undefined;
  alertRules: AlertRulesFile | undefined;
  deltas: DeltaBuilder | undefined;
  /** The TUF repository's publisher; undefined when no TUF root is installed in `<data>/tuf`. */
  tuf: TufPublisher | undefined;
  /** Delivers updates to agentless devices (SSH, HTTP push); idle until started. */
  delivery: DeliveryWorker;
}

export async function createServer(options: ServerOptions = {}): Promise<ServerParts> {
  const dataDir = options.dataDir ?? 'fleetd-data';
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const clock = options.clock ?? systemClock;
  const thresholds = options.thresholds ?? DEFAULT_THRESHOLDS;
  // First: a certificate file that cannot be used stops the start before the store is opened.
  const tls = options.tls
    ? await prepareTls(options.tls, dataDir, options.host ?? '127.0.0.1', new Date(clock.now()))
    : undefined;
  // So are a metrics token or alert rules file that cannot be used.
  const metricsTokenHash = options.metricsTokenFile ? readMetricsToken(options.metricsTokenFile) : undefined;
  if (options.alertRulesFile) readAlertRules(options.alertRulesFile);
  const store =
    options.store ??
    (await openStore({
      db: options.db,
      dataDir,
      synchronous: options.sqliteSync ?? 'normal',
      image: options.sqliteImage,
    }));
  const adminTokenFile = join(dataDir, ADMIN_TOKEN_FILE);
  const adminToken = await ensureAdminToken(store, adminTokenFile, clock.now());

  const heartbeats = new HeartbeatBatcher(store, clock, thresholds, undefined, options.egress?.bytesPerSec);
  const reports = new ReportBatcher(store, clock, thresholds);
  const blobs = options.blobs?.(dataDir, clock) ?? new FsBlobStore(dataDir, clock);
  await blobs.sweepTemp();
  const factoryCas = new FactoryCas(store, clock);
  const metrics = new ServerMetrics(store, clock, thresholds, {
    ...(options.metricsCacheMs === undefined ? {} : { cacheMs: options.metricsCacheMs }),
    accepted: { heartbeats: () => heartbeats.accepted, reports: () => reports.accepted },
    // A SQLite store has a file to measure; PostgreSQL's size is its own server's business.
    ...(databaseBytes(store) > 0 ? { databaseBytes: () => databaseBytes(store) } : {}),
  });
  const alerts = options.alertRulesFile
    ? new AlertEvaluator(store, clock, thresholds, {
        ...(options.alertIntervalMs === undefined ? {} : { minIntervalMs: options.alertIntervalMs }),
        // Evaluations start once the app (and its logger) exists.
        log: { error: (obj, msg) => app.log.error(obj, msg) },
        // The repository is opened below; rules are first evaluated once the server runs.
        tufExpiries: () => ({
          ...(tufRepository?.expiryWarnings() ?? {}),
          // The director's root, renewed only by its own offline holders (its `within` is the rule's).
          ...(director ? { [DIRECTOR_ROOT]: { expiresMs: director.rootExpiresMs, warnMs: 0 } } : {}),
        }),
      })
    : undefined;
  const keyring = await Keyring.open({
    dataDir,
    serverSigning: options.serverSigning ?? true,
    trustedKeyFiles: options.trustedKeyFiles ?? [],
  });
  const deltas = deltaBuilder(options, { store, blobs, clock, keyring, dataDir, log: () => app.log });
  const tufRepository = await TufRepository.open(dataDir, clock);
  // The app's logger exists only once the app is built; the publisher logs through it.
  const tufLog = {
    info: (obj: object, msg: string) => app.log.info(obj, msg),
    error: (obj: object, msg: string) => app.log.error(obj, msg),
  };
  if (options.tufMirrorDir !== undefined && !tufRepository) {
    throw new FleetError(
      'VALIDATION',
      '--tuf-mirror: this server has no TUF repository to mirror (install a root first: docs/signing.md)',
    );
  }
  const tuf = tufRepository && new TufPublisher(tufRepository, store, tufLog, clock, options.tufMirrorDir);
  const director = await DirectorRepository.open(dataDir, clock, store.director);
  const deliveryKey = new DeliveryKey(dataDir, options.deliveryKeyPassphraseFile);
  const app = await buildApp(
    {
      store,
      clock,
      thresholds,
      heartbeats,
      reports,
      heartbeatIntervalSec: options.heartbeatIntervalSec ?? 300,
      blobs,
      keyring,
      maxArtifactBytes: options.maxArtifactBytes ?? 8 * 1024 ** 3,
      artifactOffload: options.artifactOffload,
      webhookAllowPrivate: options.webhookAllowPrivate ?? false,
      certificates: new DeviceCertificates(
        store,
        clock,
        join(dataDir, PKI_DIR),
        options.deviceCertValidityMs,
      ),
      deviceAuth: options.deviceAuth ?? 'any',
      enrollment: options.enrollment ?? 'token',
      factoryCas,
      metrics,
      metricsTokenHash,
      alerts,
      deltas,
      ddiTenant: options.ddiTenant,
      tuf,
      director,
      menderTokenKey: options.menderApi === false ? undefined : menderTokenKey(dataDir),
      menderArtifactKeys: (options.menderArtifactKeyFiles ?? []).map((file) =>
        createPublicKey(readFileSync(file)),
      ),
      deliveryKey,
      signedUrls: options.signedUrls,
      egress: options.egress,
      pacing: options.pacing,
      telemetryRetention: options.telemetryRetention ?? DEFAULT_TELEMETRY_RETENTION,
    },
    {
      logLevel: options.logLevel ?? 'info',
      ...(options.logStream === undefined ? {} : { logStream: options.logStream }),
      ...(options.webRoot === undefined ? {} : { webRoot: options.webRoot }),
      ...(tls ? { https: tls.https } : {}),
      caCertificateFile: join(dataDir, PKI_DIR, CA_CERTIFICATE_FILE),
      ...(options.abuseLimits ? { abuseLimits: options.abuseLimits } : {}),
      ...(options.authFailureWatch ? { authFailureWatch: options.authFailureWatch } : {}),
      ...(options.signIn ? { signIn: options.signIn } : {}),
      ...(options.oidcSignIn || options.oidc
        ? { oidc: options.oidcSignIn ?? new OidcSignIn(options.oidc as OidcOptions) }
        : {}),
    },
  );
  // With `https` set, Fastify's server is a tls.Server.
  const listenerTls = tls?.attach(app.server as unknown as TlsServer);
  if (listenerTls) {
    factoryCas.attach(listenerTls);
    // Before the first connection: devices of the trusted factory CAs are accepted from the start.
    await factoryCas.refresh();
  }
  const exposed = dataFolderWarning(dataDir);
  if (exposed) app.log.warn(exposed);
  const sweeper = new StatusSweeper(store, clock, thresholds, app.log);
  const alertRules =
    options.alertRulesFile && alerts
      ? new AlertRulesFile(options.alertRulesFile, (rules) => alerts.setRules(rules), app.log)
      : undefined;
  alertRules?.load();
  await alerts?.prime();
  if (alerts) metrics.watchAlerts(alerts);
  const owner = options.replicaId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const configRollouts = new ConfigRolloutDriver(store, clock, thresholds, {
    owner,
    ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    log: app.log,
  });
  const engine = new RolloutEngine(store, clock, thresholds, {
    owner,
    ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    log: app.log,
    afterTick: async (passMs) => {
      metrics.observeEnginePass(passMs);
      // Configuration rollouts step with the firmware ones, on the same clock and replica name.
      await configRollouts
        .advanceConfigRollouts()
        .catch((error: unknown) => app.log.error({ err: error }, 'configuration rollouts step failed'));
      if (!alerts) return;
      alertRules?.reloadIfChanged();
      await alerts.maybeEvaluate();
    },
  });
  const webhooks = new WebhookDispatcher(store, clock, {
    timeoutMs: options.webhookTimeoutMs ?? 10_000,
    allowPrivate: options.webhookAllowPrivate ?? false,
    log: app.log,
  });
  const scrubber = new BlobScrubber(store, blobs, clock, app.log, {
    bytesPerSec: options.scrubBytesPerSec ?? 4 * 1024 * 1024,
  });
  const pruner = new EventPruner(store, clock, {
    policy: options.retention ?? DEFAULT_RETENTION,
    owner,
    log: app.log,
  });
  const delivery = new DeliveryWorker(store, reports, blobs, clock, thresholds, deliveryKey, {
    ...(options.deliveryConcurrency === undefined ? {} : { concurrency: options.deliveryConcurrency }),
    log: app.log,
    egress: options.egress,
    pacing: options.pacing,
  });
  return {
    app,
    store,
    clock,
    thresholds,
    adminToken,
    adminTokenFile,
    sweeper,
    engine,
    configRollouts,
    webhooks,
    scrubber,
    pruner,
    heartbeats,
    reports,
    keyring,
    factoryCas,
    tls: listenerTls,
    metrics,
    alerts,
    alertRules,
    deltas,
    tuf,
    delivery,
  };
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  assertListenerAllowed(options.host ?? '127.0.0.1', options.tls, options.insecureHttp ?? false);
  const parts = await createServer(options);
  const { app, store, sweeper, engine, webhooks, scrubber } = parts;
  const url = await app.listen({ port: options.port ?? 8080, host: options.host ?? '127.0.0.1' });
  await sweeper.sweep();
  sweeper.start(options.sweepIntervalMs ?? 15_000);
  const mqtt = options.mqtt
    ? await startMqtt(
        // Devices reach the embedded broker over TLS with the listener's certificate (8883) when the server has TLS.
        {
          host: options.host ?? '127.0.0.1',
          deviceAuth: options.deviceAuth ?? 'any',
          ...(parts.tls ? { tls: parts.tls.material() } : {}),
          ...options.mqtt,
        },
        {
          store,
          heartbeats: parts.heartbeats,
          reports: parts.reports,
          heartbeatIntervalSec: options.heartbeatIntervalSec ?? 300,
          log: app.log,
          clock: parts.clock,
          telemetryMinIntervalMs: (options.telemetryRetention ?? DEFAULT_TELEMETRY_RETENTION).minIntervalMs,
        },
      ).catch(async (error: unknown) => {
        await app.close();
        await sweeper.stop();
        await store.close();
        throw error;
      })
    : undefined;
  // The certificate is checked daily (what is due is decided by the injected clock), so renewals need no restart.
  const renewal = parts.tls
    ? setInterval(() => void renewCertificate(parts, mqtt), TLS_RENEWAL_CHECK_MS).unref()
    : undefined;
  // Another replica's `ca trust`/`ca untrust` reaches this listener (and the broker) within one poll.
  const { factoryCas, tls } = parts;
  if (tls) factoryCas.onChange = () => mqtt?.setTls(tls.material());
  const caPoll = tls
    ? setInterval(() => void followFactoryCas(parts), options.factoryCaPollMs ?? FACTORY_CA_POLL_MS).unref()
    : undefined;
  // `kill -HUP` reads the alert rules file again (a change is also picked up on the next evaluation).
  const reloadAlertRules = () => parts.alertRules?.reload();
  if (parts.alertRules) process.on('SIGHUP', reloadAlertRules);
  engine.start(options.engineIntervalMs ?? 1_000);
  webhooks.start(options.webhookIntervalMs ?? 1_000);
  scrubber.start(options.scrubIntervalMs ?? 10_000);
  parts.pruner.start(options.pruneIntervalMs ?? 10 * 60_000);
  const auditPruner =
    options.auditRetentionMs == null
      ? undefined
      : new AuditPruner(store, parts.clock, options.auditRetentionMs, app.log);
  auditPruner?.start(options.pruneIntervalMs ?? 10 * 60_000);
  const telemetryPruner = new TelemetryPruner(
    store,
    parts.clock,
    options.telemetryRetention ?? DEFAULT_TELEMETRY_RETENTION,
    app.log,
  );
  telemetryPruner.start(options.pruneIntervalMs ?? 10 * 60_000);
  // Signed before the first device asks: the releases uploaded while the server was down, a fresh timestamp.
  await parts.tuf?.tick();
  parts.tuf?.start(options.tufIntervalMs);
  parts.delivery.start(options.deliveryIntervalMs ?? 5_000);
  return {
    app,
    store,
    url,
    adminToken: parts.adminToken,
    adminTokenFile: parts.adminTokenFile,
    sweeper,
    engine,
    webhooks,
    scrubber,
    pruner: parts.pruner,
    factoryCas,
    metrics: parts.metrics,
    alerts: parts.alerts,
    mqtt,
    tls: parts.tls,
    deltas: parts.deltas,
    tuf: parts.tuf,
    delivery: parts.delivery,
    async close() {
      process.off('SIGHUP', reloadAlertRules);
      clearInterval(renewal);
      parts.deltas?.stop();
      clearInterval(caPoll);
      await mqtt?.close();
      await app.close();
      await parts.pruner.stop();
      await auditPruner?.stop();
      await telemetryPruner.stop();
      await parts.tuf?.stop();
      await scrubber.stop();
      await webhooks.stop();
      await parts.delivery.stop();
      await engine.stop();
      // After the last pass: this replica's configuration rollouts go to another at once.
      await parts.configRollouts.stop();
      await sweeper.stop();
      await store.close();
    },
  };
}

async function followFactoryCas({ factoryCas, app }: ServerParts): Promise<void> {
  try {
    if (await factoryCas.refresh()) app.log.info('TLS: the trusted factory CAs changed');
  } catch (error) {
    app.log.error({ err: error }, 'TLS: could not read the trusted factory CAs');
  }
}

async function renewCertificate(
  { tls, clock, app }: ServerParts,
  mqtt: RunningMqtt | undefined,
): Promise<void> {
  if (!tls) return;
  try {
    if (await tls.renewIfDue(new Date(clock.now()))) {
      mqtt?.setTls(tls.material());
      app.log.info('TLS: serving a renewed server certificate');
    }
  } catch (error) {
    app.log.error({ err: error }, 'TLS: could not renew the server certificate');
  }
}
