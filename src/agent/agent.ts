/**
 * The device agent: enrolls once, heartbeats, and takes pending updates through
 * notified → downloading → installing → (switch) → verifying → succeeded, or failed / rolled_back.
 *
 * Everything it must remember is on disk before it acts (state-dir.ts), so a process killed at any point
 * carries on where it stopped when started again. Every status report goes through the outbox first.
 * `runOnce()` is one step of the loop (tests drive it directly); `run()` repeats it on a timer.
 */
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { type Clock, systemClock } from '../core/clock.js';
import type { PacingTime } from '../core/token-bucket.js';
import type { DeviceCommandJson } from '../protocol/commands.js';
import type { DeviceConfigOfferJson } from '../protocol/config.js';
import { DeviceClient, type HeartbeatBody, type PendingUpdate, ProtocolError } from './client.js';
import { ConfigHook } from './config-hook.js';
import type { Consent } from './consent-hook.js';
import { DeviceCertificate } from './device-certificate.js';
import { DirectorVerifier } from './director-verifier.js';
import type { HttpFetch } from './downloader.js';
import type { HealthCheck } from './health.js';
import { HealthCounters } from './health-counters.js';
import type { KeyAlgorithm } from './identity.js';
import type { InstallerConfig } from './installers.js';
import { type Logger, stderrLogger } from './log.js';
import { MemorySlots, MemoryStateDir } from './memory-state.js';
import { MqttChannel } from './mqtt-channel.js';
import { Outbox, type SendOutcome } from './outbox.js';
import { type CommandHooks, DEFAULT_COMMAND_HOOKS, RemoteCommands } from './remote-commands.js';
import { Reporter } from './reporter.js';
import { Backoff, heartbeatDelayMs, type Random } from './schedule.js';
import { Slots } from './slots.js';
import { StateDir } from './state-dir.js';
import type { CrashPolicy } from './supervisor/crash-policy.js';
import { type AppSpec, Supervisor } from './supervisor/supervisor.js';
import { TelemetryCollector, type TelemetrySources } from './telemetry.js';
import { readAdoptedRoot, TUF_METADATA_DIR, tufAdopter } from './tuf-adoption.js';
import { TufVerifier } from './tuf-verifier.js';
import { UpdateFlow } from './update-flow.js';
import { loadPublicKey, type Verdict } from './verify.js';

export interface AgentOptions {
  /** Base URL of the FleetD server, e.g. `https://fleet.example.com`. */
  server: string;
  /** An MQTT broker to heartbeat and report over, woken by the server (docs/mqtt.md); HTTP stays the fallback. */
  mqtt?: string;
  deviceId: string;
  hardwareType: string;
  stateDir: string;
  /**
   * Keep the state in memory, not in `stateDir` (then only a label): for simulating many agents in one
   * process (memory-state.ts). Nothing survives a restart; never for a real device.
   */
  memoryState?: boolean;
  /** Told of every heartbeat and status report the agent makes, and how it went (the simulator counts them). */
  observer?: AgentObserver;
  /** Needed only until the device holds a credential or certificate (first start). */
  enrollToken?: string;
  /**
   * Without a token, ask to join through the server's approval queue (`--enrollment approve`) and ask again,
   * backing off, until an operator accepts the device. Bearer-credential enrollment only (docs/enrollment.md).
   */
  requestApproval?: boolean;
  /** PEM of the FleetD CA the server's certificate must chain to (kept in the state folder as ca.pem). */
  ca?: string;
  /**
   * Enroll with a CSR and authenticate by certificate (mutual TLS). Default: when the server is https and a
   * CA is known (`ca` or the state folder's ca.pem) and no bearer credential is on disk.
   */
  enrollCertificate?: boolean;
  /** The device key's algorithm (default ecdsa-p256). */
  keyAlgorithm?: KeyAlgorithm;
  /** Renew the certificate after this fraction of its validity (default 2/3). */
  renewAt?: number;
  /** The pinned Ed25519 release-signing key: PEM text, raw base64, or a KeyObject. */
  publicKey: string | KeyObject;
  /** A TUF root.json (provisioned): every release must then also be a signed TUF target (docs/signing.md). */
  tufRoot?: string | undefined;
  /** A mirror of the server's TUF metadata to read instead of the server (docs/signing.md, "A mirror"). */
  tufMetadataUrl?: string | undefined;
  /** The director's root.json (provisioned): every release must then also be what the director signed for this device. */
  directorRoot?: string | undefined;
  /**
   * Asked before installing a soft update (e.g. a till in use, a device in a procedure): install, defer through
   * the server within the rollout's budget, or not yet (false).
   */
  consent?: Consent;
  /** How to tell a switched-to release works; without one a switch is committed at once. */
  health?: HealthCheck | (() => Promise<Verdict>);
  /** Time a release has to become healthy (default 60 s). */
  healthDeadlineMs?: number;
  healthIntervalMs?: number;
  /** The firmware running before any FleetD release: reported until one is active (kept from first start). */
  firmwareVersion?: string;
  /** Extra enrollment details. */
  name?: string;
  timezone?: string;
  tags?: Record<string, string>;
  /** A file in which the application's supervisor keeps a count of its crashes (docs/health-gates.md). */
  appCrashFile?: string | undefined;
  /** The time a download's rate limit is paced by (docs/bandwidth.md): real by default, virtual in tests. */
  downloadPacing?: PacingTime | undefined;
  /** Telemetry added to each heartbeat (battery, location, metrics…). */
  telemetry?: () => Omit<HeartbeatBody, 'device_id' | 'firmware_version' | 'timestamp'>;
  /**
   * Telemetry and inventory reports (docs/telemetry.md), over HTTP beside the heartbeat: every `intervalMs`
   * (default 5 min), the inventory with the first and then every `inventoryIntervalMs` (default 24 h). Off when unset.
   */
  telemetryReports?: (TelemetrySources & { intervalMs?: number; inventoryIntervalMs?: number }) | undefined;
  /** Restarts during a trial before the agent goes back to the previous slot on its own (default 3). */
  maxTrialRestarts?: number;
  /** Boots the bootloader grants a trial before the agent goes back (the `boot-count` it decrements; default 3). */
  trialBoots?: number;
  /** How long one install step may run: a script, `rauc install`, `dpkg -i`… (default 5 min). */
  scriptTimeoutMs?: number;
  /** What the install handlers need: file targets, RAUC/SWUpdate/dpkg settings (docs/installers.md). */
  installers?: InstallerConfig;
  /**
   * Applications the agent supervises (run with `sh -c` in the active slot, restarted after a switch, on a
   * crash after a backoff; logs rotated in STATE/logs). A crash loop fails a trial's health check.
   */
  apps?: AppSpec[];
  crashPolicy?: CrashPolicy;
  /** The shell commands remote commands run (reboot, restart-app, collect-logs); see remote-commands.ts. */
  commandHooks?: Partial<CommandHooks>;
  /** How long one remote command may run (default 10 min). */
  commandTimeoutMs?: number;
  /** Remote configuration: the shell command that applies a document (config-hook.ts); none, none applied. */
  configHook?: string;
  /** How long the configuration hook may run (default 5 min). */
  configHookTimeoutMs?: number;
  clock?: Clock;
  fetch?: HttpFetch;
  random?: Random;
  log?: Logger;
  /** How `run()` waits between steps. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface AgentObserver {
  heartbeat(outcome: { ok: true } | { ok: false; error: string }): void;
  report(outcome: SendOutcome): void;
}

/** Something only an operator can fix (no credential, device already enrolled, state dir of another device). */
export class AgentFatalError extends Error {
  override name = 'AgentFatalError';
}

export class Agent {
  private readonly state: StateDir;
  private readonly slots: Slots;
  private readonly client: DeviceClient;
  /** Set up by start(): the device certificate and the TLS every call goes through. */
  private certificate: DeviceCertificate | undefined;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly publicKey: KeyObject;
  /** Set up by start(), before anything reports. */
  private reports!: Reporter;
  private started = false;
  private busy = false;
  private initialFirmware: string | undefined;
  private readonly callRetry: Backoff;
  /** The server refuses the credential (decommissioned, revoked): heartbeats back off up to LOCKOUT_CAP_MS. */
  private lockedOut = false;
  /** When the approval queue said to ask again (ms since the epoch, by the injected clock). */
  private approvalDue = 0;
  private readonly lockout: Backoff;
  private flow!: UpdateFlow;
  private healthCounters = new HealthCounters(undefined, undefined);
  private readonly commands: RemoteCommands;
  private readonly configHook: ConfigHook | undefined;
  private readonly abort = new AbortController();
  /** The supervised applications, when `apps` are configured. */
  private supervisor: Supervisor | undefined;
  /** Heartbeats and reports: over MQTT when it is configured and up, else over HTTP. */
  private readonly channel: Channel;
  private readonly mqtt: MqttChannel | undefined;
  /** A wake-up came: the next step starts now instead of after the sleep. */
  private woken = false;
  private interruptSleep: (() => void) | undefined;
  private readonly collector: TelemetryCollector | undefined;
  /** When the next telemetry and inventory reports are due (ms, by the injected clock). */
  private telemetryDue = 0;
  private inventoryDue = 0;

  constructor(private readonly options: AgentOptions) {
    this.state = options.memoryState ? new MemoryStateDir(options.stateDir) : new StateDir(options.stateDir);
    this.slots = options.memoryState ? new MemorySlots(options.stateDir) : new Slots(options.stateDir);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.log ?? stderrLogger;
    // Every call, downloads included, goes through the certificate's TLS once start() has set it up.
    const httpFetch: HttpFetch = (input, init) =>
      (this.certificate?.fetch ?? options.fetch ?? fetch)(input, init);
    this.client = new DeviceClient(options.server, httpFetch);
    this.mqtt = options.mqtt
      ? new MqttChannel({
          url: options.mqtt,
          // mqtts://: the FleetD CA and, once the device has one, its certificate (read at each connection).
          tls: () => {
            const material = this.certificate?.tlsMaterial();
            return {
              caPems: material?.caPem ? [material.caPem] : [],
              certificatePem: material?.certificatePem,
              privateKeyPem: material?.keyPem,
            };
          },
          deviceId: options.deviceId,
          http: this.client,
          log: this.log,
          onWake: () => this.wake(),
        })
      : undefined;
    this.channel = observed(this.mqtt ?? this.client, options.observer);
    // parsed now: a bad key stops the agent at start, not at its first update
    this.publicKey =
      typeof options.publicKey === 'string' ? loadPublicKey(options.publicKey) : options.publicKey;
    this.collector = options.telemetryReports && new TelemetryCollector(options.telemetryReports);
    this.callRetry = new Backoff(this.random);
    this.lockout = new Backoff(this.random, LOCKOUT_CAP_MS);
    this.commands = new RemoteCommands({
      hooks: { ...DEFAULT_COMMAND_HOOKS, ...options.commandHooks },
      publicKey: this.publicKey,
      timeoutMs: options.commandTimeoutMs ?? 10 * 60_000,
      log: this.log,
      // Results go over HTTP whichever channel heartbeats, as downloads do.
      post: (id, result) => this.client.commandResult(id, result),
    });
    this.configHook =
      options.configHook === undefined
        ? undefined
        : new ConfigHook({
            command: options.configHook,
            dir: join(options.stateDir, 'config'),
            timeoutMs: options.configHookTimeoutMs ?? 5 * 60_000,
            log: this.log,
            post: (status) => this.client.configStatus(status),
          });
  }

  /** One step: deliver reports, heartbeat, work on the pending update. Returns ms until the next step. */
  async runOnce(): Promise<number> {
    if (this.busy) throw new Error('runOnce is already running');
    this.busy = true;
    try {
      if (!this.started) await this.start();
      this.supervisor?.poll();
      if (!this.enrolled() && !(await this.enroll())) {
        const now = this.clock.now();
        return Math.max(this.callRetry.waitMs(now), this.approvalDue - now);
      }
      // A renewed certificate: the broker connection is made again with it (the old one expires later).
      if (!this.lockedOut && (await this.certificate?.renewIfDue(this.client))) await this.mqtt?.reconnect();
      if (this.lockedOut) {
        // An operator may have written a new credential meanwhile (fleetd devices credential).
        this.client.credential = (await this.state.readCredential()) ?? this.client.credential;
      } else {
        await this.reports.flush();
      }
      let next: number;
      let pending: PendingUpdate[] | undefined;
      let commands: DeviceCommandJson[] = [];
      let config: DeviceConfigOfferJson | undefined;
      try {
        const answer = await this.channel.heartbeat(await this.heartbeatBody());
        this.callRetry.succeeded();
        if (this.lockedOut) {
          this.lockedOut = false;
          this.lockout.succeeded();
          this.log.info('the server accepts this device again');
        }
        next = heartbeatDelayMs(answer.nextHeartbeatSec, this.random);
        pending = answer.pending;
        commands = answer.commands;
        config = answer.config;
      } catch (e) {
        // Refused credential: nothing else can succeed either, so ask again rarely and do nothing else.
        if (credentialRefused(e)) return this.lockedOutFor(e);
        this.log.warn('heartbeat failed', { error: (e as Error).message });
        next = this.callRetry.failed(this.clock.now());
      }
      if (!this.lockedOut) await this.reportTelemetry();
      if (commands.length > 0) await this.commands.run(commands);
      else if (!this.lockedOut) await this.commands.flush();
      if (!this.lockedOut) await this.configHook?.apply(config);
      if (pending) {
        this.reports.observe(pending);
        await this.flow.work(pending);
      }
      await this.reports.flush();
      const telemetryWait = this.collector && Math.max(0, this.telemetryDue - this.clock.now());
      const waits = [
        next,
        this.flow.waitMs(),
        this.reports.retryInMs(),
        this.certificate?.waitMs(),
        telemetryWait,
        this.appRestartInMs(),
      ];
      return Math.min(...waits.filter((w): w is number => w !== undefined));
    } finally {
      this.busy = false;
    }
  }

  /** Runs until `signal` aborts; stops at errors only an operator can fix. */
  async run(signal: AbortSignal): Promise<void> {
    const sleep = this.options.sleep ?? ((ms, s) => delay(ms, undefined, { signal: s }));
    signal.addEventListener('abort', () => this.abort.abort(), { once: true });
    while (!signal.aborted) {
      let wait: number;
      try {
        wait = await this.runOnce();
      } catch (e) {
        if (e instanceof AgentFatalError) throw e;
        this.log.warn('agent step failed', { error: (e as Error).message });
        wait = this.callRetry.failed(this.clock.now());
      }
      if (this.woken) {
        this.woken = false;
        continue;
      }
      const woken = new AbortController();
      this.interruptSleep = () => woken.abort();
      await sleep(wait, AbortSignal.any([signal, woken.signal])).catch(() => undefined);
      this.interruptSleep = undefined;
      this.woken = false;
    }
    await this.supervisor?.stopAll();
    await this.mqtt?.close();
    await this.certificate?.close();
  }

  /** The supervised applications' states (empty without `apps`). */
  apps() {
    return this.supervisor?.status() ?? [];
  }

  private appRestartInMs(): number | undefined {
    const due = this.apps()
      .map((a) => a.restartAt)
      .filter((t): t is number => t !== undefined);
    return due.length > 0 ? Math.max(0, Math.min(...due) - this.clock.now()) : undefined;
  }

  /** After a switch or a rollback the applications run what the active slot now holds. */
  private async restartApps(): Promise<void> {
    for (const app of this.options.apps ?? []) await this.supervisor?.restart(app.name);
  }

  /** The server has something for us (a wake-up over MQTT): heartbeat now rather than at the next interval. */
  wake(): void {
    this.woken = true;
    this.interruptSleep?.();
  }

  /** The version the device runs: the active slot's release, else the firmware it started with. */
  async firmwareVersion(): Promise<string | undefined> {
    if (!this.started) return this.options.firmwareVersion;
    const release = await this.slots.release(await this.slots.active());
    return release?.version ?? this.initialFirmware;
  }

  // --- start and recovery ---

  private async start(): Promise<void> {
    const o = this.options;
    await this.state.init();
    const identity = await this.state.readIdentity();
    if (identity && (identity.device_id !== o.deviceId || identity.hardware_type !== o.hardwareType)) {
      throw new AgentFatalError(
        `${o.stateDir} belongs to device ${identity.device_id} (${identity.hardware_type}), not ${o.deviceId} (${o.hardwareType})`,
      );
    }
    this.initialFirmware = identity?.initial_firmware ?? o.firmwareVersion;
    if (!identity || (identity.initial_firmware === undefined && o.firmwareVersion !== undefined)) {
      await this.state.writeIdentity({
        device_id: o.deviceId,
        hardware_type: o.hardwareType,
        server: o.server,
        ...(this.initialFirmware !== undefined ? { initial_firmware: this.initialFirmware } : {}),
      });
    }
    await this.slots.init();
    this.healthCounters = new HealthCounters(
      o.memoryState ? undefined : this.state.path('health-counters.json'),
      o.appCrashFile,
    );
    await this.healthCounters.open();
    const outbox = o.memoryState ? Outbox.inMemory() : await Outbox.open(this.state.path('outbox.json'));
    this.reports = new Reporter(outbox, this.channel, this.clock, this.random, this.log);
    this.client.credential = await this.state.readCredential();
    if (!o.memoryState) {
      this.certificate = await DeviceCertificate.open(
        {
          stateDir: o.stateDir,
          server: o.server,
          deviceId: o.deviceId,
          ca: o.ca,
          enroll: o.enrollCertificate,
          keyAlgorithm: o.keyAlgorithm,
          renewAt: o.renewAt,
          clock: this.clock,
          random: this.random,
          log: this.log,
        },
        this.client.credential !== undefined,
      ).catch((e: Error) => {
        throw new AgentFatalError(e.message);
      });
    }
    const verifierFor = (rootJson: string) =>
      new TufVerifier({
        rootJson,
        metadataDir: this.state.path(TUF_METADATA_DIR),
        server: o.server.replace(/\/+$/, ''),
        metadataUrl: o.tufMetadataUrl,
        fetch: this.client.fetchFn,
      });
    // A root adopted through a rollout (tuf-adoption.ts) counts as provisioned from then on.
    const tufRoot = o.tufRoot ?? (o.memoryState ? undefined : await readAdoptedRoot(this.state));
    const tuf = tufRoot === undefined ? undefined : verifierFor(tufRoot);
    const adoptTuf = o.memoryState
      ? undefined
      : tufAdopter({ state: this.state, client: this.client, publicKey: this.publicKey, verifierFor });
    const director =
      o.directorRoot === undefined
        ? undefined
        : new DirectorVerifier({
            rootJson: o.directorRoot,
            metadataDir: this.state.path('director'),
            server: o.server,
            deviceId: o.deviceId,
            fetch: this.client.fetchFn,
            authHeaders: () => this.client.authHeaders(),
          });
    if (o.apps && o.apps.length > 0) {
      const supervisor = new Supervisor(this.state.path('logs'), this.clock, o.crashPolicy, (app) =>
        this.log.warn('application in a crash loop; not restarted', { ...app }),
      );
      this.supervisor = supervisor;
      for (const app of o.apps) supervisor.start({ cwd: this.state.path('current'), ...app });
    }
    this.flow = new UpdateFlow(
      {
        ...o,
        publicKey: this.publicKey,
        deltas: o.memoryState !== true,
        tuf,
        adoptTuf,
        director,
        ...(this.supervisor
          ? { appHealth: () => this.supervisor!.health(), onSwitch: () => this.restartApps() }
          : {}),
      },
      {
        state: this.state,
        slots: this.slots,
        reports: this.reports,
        client: this.client,
        clock: this.clock,
        random: this.random,
        log: this.log,
        signal: this.abort.signal,
        firmwareVersion: () => this.firmwareVersion(),
        beforeInstall: () => this.healthCounters.resetForInstall(),
      },
    );
    this.started = true;
    await this.flow.recoverTrial();
  }

  // --- talking to the server ---

  /** A bearer credential, or a device certificate, is in hand. */
  private enrolled(): boolean {
    return this.client.credential !== undefined || this.certificate?.enrolled === true;
  }

  private async enroll(): Promise<boolean> {
    const o = this.options;
    const byCertificate = this.certificate?.inUse === true;
    if (!o.enrollToken && o.requestApproval) {
      if (byCertificate) {
        throw new AgentFatalError(
          'asking for approval (--request-approval) enrolls for a bearer credential only, not with --enroll-cert; ' +
            'for a certificate, enroll with a token',
        );
      }
      return this.askToJoin();
    }
    if (!o.enrollToken) {
      const what = byCertificate ? this.certificate!.path : this.state.path('credential');
      throw new AgentFatalError(`no credential in ${what} and no enrollment token to get one with`);
    }
    try {
      const version = await this.firmwareVersion();
      const body = {
        enrollment_token: o.enrollToken,
        device_id: o.deviceId,
        hardware_type: o.hardwareType,
        ...(version !== undefined ? { firmware_version: version } : {}),
        ...(o.name !== undefined ? { name: o.name } : {}),
        ...(o.timezone !== undefined ? { timezone: o.timezone } : {}),
        ...(o.tags !== undefined ? { tags: o.tags } : {}),
      };
      if (byCertificate) {
        await this.certificate!.enroll(this.client, body);
      } else {
        const credential = await this.client.enroll(body);
        await this.state.writeCredential(credential); // shown once by the server: on disk before anything else
        this.client.credential = credential;
      }
      this.callRetry.succeeded();
      this.log.info('enrolled', { device_id: o.deviceId });
      return true;
    } catch (e) {
      if (e instanceof ProtocolError && e.status < 500 && e.status !== 408 && e.status !== 429) {
        const hint =
          e.code === 'DEVICE_EXISTS'
            ? `; have an operator issue one (fleetd devices credential ${o.deviceId}) and write it to ${this.state.path('credential')}`
            : '';
        throw new AgentFatalError(`${e.message}${hint}`);
      }
      this.log.warn('enrollment failed; will retry', { error: (e as Error).message });
      this.callRetry.failed(this.clock.now());
      return false;
    }
  }

  /**
   * The approval queue: the same request secret each time; 202 means wait (at least the server's retry_after,
   * longer as the backoff grows), 201 brings the credential.
   */
  private async askToJoin(): Promise<boolean> {
    const o = this.options;
    try {
      const version = await this.firmwareVersion();
      const answer = await this.client.askToJoin({
        device_id: o.deviceId,
        hardware_type: o.hardwareType,
        request_secret: await this.state.requestSecret(),
        ...(version !== undefined ? { firmware_version: version } : {}),
        ...(o.name !== undefined ? { name: o.name } : {}),
        ...(o.timezone !== undefined ? { timezone: o.timezone } : {}),
        ...(o.tags !== undefined ? { tags: o.tags } : {}),
      });
      const now = this.clock.now();
      if ('waitSec' in answer) {
        this.callRetry.failed(now);
        this.approvalDue = now + answer.waitSec * 1000;
        this.log.info('waiting for an operator to accept this device', { device_id: o.deviceId });
        return false;
      }
      await this.state.writeCredential(answer.credential); // shown once: on disk before anything else
      this.client.credential = answer.credential;
      this.callRetry.succeeded();
      this.log.info('accepted and enrolled', { device_id: o.deviceId });
      return true;
    } catch (e) {
      if (e instanceof ProtocolError && e.status < 500 && e.status !== 408 && e.status !== 429) {
        throw new AgentFatalError(e.message);
      }
      this.log.warn('asking to join failed; will retry', { error: (e as Error).message });
      this.callRetry.failed(this.clock.now());
      return false;
    }
  }

  /** Says once, plainly, that the server no longer accepts this device; returns the wait before asking again. */
  private lockedOutFor(e: ProtocolError): number {
    if (!this.lockedOut) {
      this.lockedOut = true;
      const why =
        e.code === 'DEVICE_DECOMMISSIONED'
          ? 'this device was decommissioned'
          : 'this device was decommissioned or its credential was revoked';
      const id = this.options.deviceId;
      const remedy = this.certificate?.inUse
        ? `re-provision it (fleetd devices provision ${id}), remove ${this.certificate.path} and start the agent with the new bundle`
        : `have an operator issue a new credential (fleetd devices credential ${id}) and write it to ${this.state.path('credential')}`;
      this.log.warn(
        `the server refuses this device's credential (HTTP ${e.status}${e.code ? ` ${e.code}` : ''}): ${why}. ` +
          `Nothing more will be sent; the agent asks again at most once an hour. To bring it back, ${remedy}`,
      );
    }
    return this.lockout.failed(this.clock.now());
  }

  /** Sends telemetry when it is due (and the inventory when that is); a failure waits for the next sample. */
  private async reportTelemetry(): Promise<void> {
    const reports = this.options.telemetryReports;
    const now = this.clock.now();
    if (!this.collector || !reports || now < this.telemetryDue) return;
    const intervalMs = reports.intervalMs ?? 5 * 60_000;
    this.telemetryDue = now + intervalMs;
    try {
      const withInventory = now >= this.inventoryDue;
      const metrics = await this.collector.collect();
      const inventory = withInventory ? await this.collector.inventory() : undefined;
      const answer = await this.client.telemetry({ metrics, ...(inventory ? { inventory } : {}) });
      if (answer.accepted && withInventory)
        this.inventoryDue = now + (reports.inventoryIntervalMs ?? 24 * 3_600_000);
      if (!answer.accepted) this.telemetryDue = now + answer.waitSec * 1000;
    } catch (e) {
      this.log.warn('telemetry report failed', { error: (e as Error).message });
    }
  }

  private async heartbeatBody(): Promise<HeartbeatBody> {
    const version = await this.firmwareVersion();
    const telemetry = this.options.telemetry?.();
    const apps = Object.fromEntries(this.apps().map((a) => [`app:${a.name}`, a.state]));
    const metrics = { ...telemetry?.metrics, ...apps };
    return {
      ...telemetry,
      ...(Object.keys(metrics).length > 0 ? { metrics } : {}),
      device_id: this.options.deviceId,
      ...(version !== undefined ? { firmware_version: version } : {}),
      timestamp: new Date(this.clock.now()).toISOString(),
      health: await this.healthCounters.read(),
    };
  }
}

/** The longest wait between heartbeats of a device whose credential the server refuses. */
export const LOCKOUT_CAP_MS = 3_600_000;

/** 401 (credential unknown or revoked) and 403 (decommissioned, or not this device) never pass on retry. */
function credentialRefused(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError && (e.status === 401 || e.status === 403);
}

type Channel = Pick<DeviceClient, 'heartbeat' | 'report'>;

function observed(channel: Channel, observer: AgentObserver | undefined): Channel {
  if (!observer) return channel;
  return {
    heartbeat: async (body) => {
      try {
        const answer = await channel.heartbeat(body);
        observer.heartbeat({ ok: true });
        return answer;
      } catch (e) {
        observer.heartbeat({ ok: false, error: (e as Error).message });
        throw e;
      }
    },
    report: async (r) => {
      const outcome = await channel.report(r);
      observer.report(outcome);
      return outcome;
    },
  };
}
