/**
 * The real FleetD server — store, routes, engine, sweeper — built in-process on a SQLite file (or PostgreSQL) and driven on
 * a manual clock, with devices that speak the real device protocol to it. The POS demo, the engine tests and
 * the simulator all run through this: nothing here is a second implementation of the product.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../core/clock.js';
import { createServer, type ServerParts } from '../server/serve.js';
import { databaseBytes, memoryImage } from '../store/open.js';
import { injectTransport, type Outcome, ProtocolDevice, type StepReport } from './protocol-device.js';

export interface FleetDeviceJson {
  id: string;
  firmware_version?: string | null;
  hardware_type?: string | null;
  [key: string]: unknown;
}

/** How a device's update of a version ends: the scenario decides (success by default). */
export type OutcomeRule = (deviceId: string, update: { version: string; action: string }) => Outcome;

export class VirtualFleet {
  readonly devices = new Map<string, ProtocolDevice>();
  private outcome: OutcomeRule = () => ({ kind: 'succeed' });

  private constructor(
    public parts: ServerParts,
    readonly adminToken: string,
    readonly clock: ManualClock,
    private readonly dataDir: string,
    private readonly ownsDir: boolean,
    private db: string | undefined,
  ) {}

  static async create(options: {
    start: number;
    dataDir?: string;
    /**
     * postgres://… URL (an empty database or schema), `:memory:` (SQLite in memory: nothing to write to disk,
     * for a rehearsal nobody reads afterwards); default: a SQLite file in the data folder.
     */
    db?: string | undefined;
    heartbeatIntervalSec?: number;
  }): Promise<VirtualFleet> {
    const ownsDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'fleetd-virtual-'));
    const clock = new ManualClock(options.start);
    const parts = await createServer({
      dataDir,
      db: options.db,
      clock,
      logLevel: 'silent',
      replicaId: 'virtual',
      heartbeatIntervalSec: options.heartbeatIntervalSec ?? 300,
    });
    if (parts.adminToken === undefined) throw new Error(`${dataDir} already holds a FleetD database`);
    return new VirtualFleet(parts, parts.adminToken, clock, dataDir, ownsDir, options.db);
  }

  get now(): number {
    return this.clock.now();
  }

  setOutcome(rule: OutcomeRule): void {
    this.outcome = rule;
  }

  /** An operator API call with the admin token; throws on any answer but `expect`. */
  async api<T = Record<string, unknown>>(
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    body?: unknown,
  ): Promise<T> {
    const r = await this.parts.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${this.adminToken}` },
      ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
    });
    if (r.statusCode >= 400) throw new Error(`${method} ${url}: ${r.statusCode} ${r.body}`);
    return r.json() as T;
  }

  /** Imports a fleet file and gives every device a credential and a protocol client. */
  async importFleet(doc: { now?: string; devices: FleetDeviceJson[] }): Promise<void> {
    await this.api('POST', '/api/v1/devices/import', doc);
    const transport = injectTransport(this.parts.app);
    for (const d of doc.devices) {
      const { credential } = await this.api<{ credential: string }>(
        'POST',
        `/api/v1/devices/${d.id}/credential`,
      );
      this.devices.set(
        d.id,
        new ProtocolDevice(d.id, credential, transport, d.firmware_version ?? null, {
          outcome: (u) => this.outcome(d.id, u),
        }),
      );
    }
  }

  /** Uploads a release, signed by the server. */
  async release(name: string, version: string, hardware: string[], type = 'firmware'): Promise<void> {
    const query = new URLSearchParams({ name, version, type });
    for (const h of hardware) query.append('hardware', h);
    const r = await this.parts.app.inject({
      method: 'POST',
      url: `/api/v1/artifacts?${query}`,
      headers: {
        authorization: `Bearer ${this.adminToken}`,
        'content-type': 'application/octet-stream',
      },
      payload: Buffer.from(`${name} ${version} image\n`.repeat(64)),
    });
    if (r.statusCode !== 201) throw new Error(`release ${name}@${version}: ${r.statusCode} ${r.body}`);
  }

  device(id: string): ProtocolDevice {
    const d = this.devices.get(id);
    if (!d) throw new Error(`no device ${id} in this fleet`);
    return d;
  }

  /** These devices heartbeat and carry out what they are granted. */
  async connect(ids: Iterable<string>): Promise<Array<StepReport & { deviceId: string }>> {
    const reports: Array<StepReport & { deviceId: string }> = [];
    for (const id of ids) {
      for (const r of await this.device(id).connect()) reports.push({ ...r, deviceId: id });
    }
    return reports;
  }

  /** One engine pass (and a status sweep) at the current virtual time. */
  async tick(): Promise<void> {
    await this.parts.sweeper.sweep();
    await this.parts.engine.tick();
  }

  advance(ms: number): void {
    this.clock.advance(ms);
  }

  /** Stops the server and starts a new one on the same database, as after a crash: only the store survives. */
  async restart(): Promise<void> {
    await this.start(await this.stop());
  }

  /** Stops the server; in memory, what survives is what was committed: the database image, returned. */
  private async stop(): Promise<Buffer | undefined> {
    await this.parts.app.close();
    const image = this.db === ':memory:' ? await memoryImage(this.parts.store) : undefined;
    await this.parts.store.close();
    return image;
  }

  private async start(image: Buffer | undefined): Promise<void> {
    this.parts = await createServer({
      dataDir: this.dataDir,
      db: this.db,
      sqliteImage: image,
      clock: this.clock,
      logLevel: 'silent',
      replicaId: 'virtual',
    });
    const transport = injectTransport(this.parts.app);
    for (const d of this.devices.values()) d.transport = transport;
  }

  /** How big the database is, when it is in memory (0 otherwise). */
  memoryBytes(): number {
    return this.db === ':memory:' ? databaseBytes(this.parts.store) : 0;
  }

  /**
   * Moves an in-memory database to a file in the data folder (it outgrew SQLite's in-memory limit): the same
   * committed database, the server started again on it, as after a restart.
   */
  async moveToFile(): Promise<void> {
    if (this.db !== ':memory:') return;
    const image = await this.stop();
    this.db = join(this.dataDir, 'fleetd.db');
    writeFileSync(this.db, image!);
    await this.start(undefined);
  }

  async close(): Promise<void> {
    // A delta still building would write into the folder removed below.
    this.parts.deltas?.stop();
    await this.parts.deltas?.idle();
    await this.parts.app.close();
    await this.parts.store.close();
    if (this.ownsDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
