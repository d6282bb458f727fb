/**
 * The Prometheus metrics of one server (docs/monitoring.md), on a registry of its own (a process may run
 * several servers: the tests, the simulator). Request latency and the counters are kept as they happen; the
 * fleet-wide gauges are set from a cached snapshot (fleet-snapshot.ts) when a scrape asks.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../../core/clock.js';
import type { StatusThresholds } from '../../core/device.js';
import { tally } from '../../core/rollout/counts.js';
import { UPDATE_STATES } from '../../core/update-state.js';
import type { AlertEvaluator } from '../../engine/alert-evaluator.js';
import type { Store } from '../../store/store.js';
import { boundedLabels } from './bounded-labels.js';
import { FleetSnapshotCache } from './fleet-snapshot.js';

export interface ServerMetricsOptions {
  /** How long fleet-wide figures are reused between scrapes (default 10 s). */
  cacheMs?: number;
  /** Distinct hardware types and firmware versions shown; the rest are summed as `other` (default 50). */
  maxLabelValues?: number;
  /** Accepted heartbeats and reports so far (the batchers count them, whatever transport brought them). */
  accepted: { heartbeats(): number; reports(): number };
  /** The database file's size in bytes, where there is one (SQLite). */
  databaseBytes?: () => number | undefined;
}

const DEVICE_API = '/api/device/v1/';
const ENROLL_ROUTE = `${DEVICE_API}enroll`;

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly snapshot: FleetSnapshotCache;
  private readonly maxLabels: number;
  private alerts: AlertEvaluator | undefined;

  private readonly requests = new Histogram({
    name: 'fleetd_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern, method and status class',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  private readonly enginePass = new Histogram({
    name: 'fleetd_engine_pass_seconds',
    help: 'Time of one rollout engine pass over the rollouts this server drives',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly enrollmentFailures = new Counter({
    name: 'fleetd_enrollment_failures_total',
    help: 'Device enrollment requests refused (4xx) by this server',
    registers: [this.registry],
  });
  private readonly deviceAuthFailures = new Counter({
    name: 'fleetd_device_auth_failures_total',
    help: 'Device API requests refused for their credential or certificate (401, 403) by this server',
    registers: [this.registry],
  });
  private readonly devices = this.gauge('fleetd_devices', 'Devices by status', ['status']);
  private readonly hardware = this.gauge(
    'fleetd_devices_by_hardware',
    'Devices (not decommissioned) by hardware type; the smaller groups summed as "other"',
    ['hardware_type'],
  );
  private readonly firmware = this.gauge(
    'fleetd_devices_by_firmware',
    'Devices (not decommissioned) by firmware version; the smaller groups summed as "other"',
    ['firmware'],
  );
  private readonly silent = this.gauge('fleetd_devices_silent', 'Devices not seen for longer than a period', [
    'over',
  ]);
  private readonly rollouts = this.gauge('fleetd_rollouts', 'Open rollouts by state', ['state']);
  private readonly updates = this.gauge(
    'fleetd_rollout_updates',
    'Device updates of each open rollout by state',
    ['rollout', 'state'],
  );
  private readonly successRate = this.gauge(
    'fleetd_rollout_success_ratio',
    'Succeeded / finished device updates of each open rollout (absent until one finished)',
    ['rollout'],
  );
  private readonly webhookBacklog = this.gauge(
    'fleetd_webhook_backlog_events',
    'Events a webhook has not been delivered yet',
    ['webhook'],
  );
  private readonly webhookLag = this.gauge(
    'fleetd_webhook_lag_seconds',
    'Age of the oldest event a webhook has not been delivered yet (event lag)',
    ['webhook'],
  );
  private readonly webhookFailures = this.gauge(
    'fleetd_webhook_failures',
    'Failed attempts since the last delivery, per webhook',
    ['webhook'],
  );
  private readonly snapshotAge = this.gauge(
    'fleetd_fleet_snapshot_age_seconds',
    'Age of the cached fleet-wide figures in this scrape',
    [],
  );
  private readonly snapshotRead = this.gauge(
    'fleetd_fleet_snapshot_read_seconds',
    'How long reading the fleet-wide figures from the store took',
    [],
  );
  private readonly alertsFiring = this.gauge(
    'fleetd_alerts',
    'Alerts of the alert rules by phase and severity',
    ['phase', 'severity'],
  );
  private readonly databaseSize: Gauge | undefined;

  constructor(
    store: Store,
    private readonly clock: Clock,
    thresholds: StatusThresholds,
    private readonly options: ServerMetricsOptions,
  ) {
    this.snapshot = new FleetSnapshotCache(store, clock, thresholds, options.cacheMs ?? 10_000);
    this.maxLabels = options.maxLabelValues ?? 50;
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters, which `promtool check metrics` flags; their per-type series stay.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      this.registry.removeSingleMetric(name);
    }
    // Only where there is a file to measure: a 0 for PostgreSQL would read as an empty database.
    if (options.databaseBytes) {
      this.databaseSize = this.gauge('fleetd_database_size_bytes', 'Size of the database files (SQLite)', []);
    }
    new Counter({
      name: 'fleetd_heartbeats_total',
      help: 'Device heartbeats accepted by this server (HTTP and MQTT); rate() gives heartbeats per second',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(options.accepted.heartbeats());
      },
    });
    new Counter({
      name: 'fleetd_reports_total',
      help: 'Device status reports handled by this server (HTTP and MQTT)',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(options.accepted.reports());
      },
    });
  }

  private gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  /** The alert evaluator whose alerts are counted (when alert rules are configured). */
  watchAlerts(alerts: AlertEvaluator): void {
    this.alerts = alerts;
  }

  /** Times every request by its route pattern (never its URL: ids would make a series per device). */
  instrument(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const status = `${Math.floor(reply.statusCode / 100)}xx`;
      this.requests.observe({ route, method: request.method, status }, reply.elapsedTime / 1_000);
      const refused = reply.statusCode >= 400 && reply.statusCode < 500;
      if (route === ENROLL_ROUTE && refused) this.enrollmentFailures.inc();
      else if (route.startsWith(DEVICE_API) && (reply.statusCode === 401 || reply.statusCode === 403)) {
        this.deviceAuthFailures.inc();
      }
    });
  }

  /** Resolves once a reading of the fleet-wide figures under way (if any) is done. */
  settled(): Promise<unknown> {
    return this.snapshot.settled();
  }

  /** What the engine reports after each pass. */
  observeEnginePass(ms: number): void {
    this.enginePass.observe(ms / 1_000);
  }

  /** The exposition text, with the fleet-wide gauges set from the (cached) snapshot. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    const s = await this.snapshot.get();
    const { stats } = s;
    this.devices.reset();
    for (const [status, n] of Object.entries(stats.byStatus)) this.devices.set({ status }, n);
    this.hardware.reset();
    const hw = stats.hardware.map((h) => ({ value: h.hardwareType, count: h.count }));
    for (const g of boundedLabels(hw, this.maxLabels)) this.hardware.set({ hardware_type: g.value }, g.count);
    this.firmware.reset();
    const fw = stats.firmware.map((f) => ({ value: f.version, count: f.count }));
    for (const g of boundedLabels(fw, this.maxLabels)) this.firmware.set({ firmware: g.value }, g.count);
    this.silent.reset();
    this.silent.set({ over: '24h' }, stats.silent.over24h);
    this.silent.set({ over: '30d' }, stats.silent.over30d);
    this.rollouts.reset();
    this.updates.reset();
    this.successRate.reset();
    for (const r of s.rollouts) {
      this.rollouts.inc({ state: r.state });
      const byState = new Map<string, number>(UPDATE_STATES.map((st) => [st, 0]));
      for (const c of r.counts) byState.set(c.state, (byState.get(c.state) ?? 0) + c.count);
      for (const [state, n] of byState) this.updates.set({ rollout: r.id, state }, n);
      const t = tally(Object.fromEntries(byState));
      if (t.successRate !== null) this.successRate.set({ rollout: r.id }, t.successRate / 100);
    }
    this.webhookBacklog.reset();
    this.webhookLag.reset();
    this.webhookFailures.reset();
    for (const w of s.webhooks) {
      this.webhookBacklog.set({ webhook: w.id }, w.backlog);
      this.webhookLag.set({ webhook: w.id }, w.lagSeconds);
      this.webhookFailures.set({ webhook: w.id }, w.failures);
    }
    this.snapshotAge.set(Math.max(0, (this.clock.now() - s.at) / 1_000));
    this.snapshotRead.set(s.readSeconds);
    this.alertsFiring.reset();
    for (const a of this.alerts?.list() ?? [])
      this.alertsFiring.inc({ phase: a.phase, severity: a.severity });
    const bytes = this.options.databaseBytes?.();
    if (bytes !== undefined) this.databaseSize?.set(bytes);
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
