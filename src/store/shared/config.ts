/**
 * Remote configuration in shared SQL (docs/configuration.md). Documents are rows of `config_documents`; each
 * device's desired configuration is resolved into `device_config` (version and hash) so that drift, and the
 * `config.drift` filter, is a comparison of two columns. Resolution runs for every device when a document is set or
 * removed, and for a heartbeat batch's devices on each heartbeat (a tag edit or a new device is so caught at the
 * device's next heartbeat). A row is written only when what a device should hold changed. A document's staged
 * version (`config_staged`) is a source only for the devices it was released to (`config_releases`), in place of
 * the current version; promoting it makes it the current version, dropping it sends those devices back.
 */
import {
  type ConfigSource,
  type ConfigTarget,
  configDrift,
  desiredConfig,
  desiredVersion,
  type JsonObject,
  MAX_CONFIG_DOCUMENTS,
  MAX_CONFIG_OUTPUT,
} from '../../core/config-document.js';
import { FleetError } from '../../core/errors.js';
import { type FilterNode, parseFilter } from '../../core/filter/index.js';
import type { SqlContext } from '../adapter.js';
import type {
  ConfigDocumentRecord,
  ConfigOffer,
  ConfigReport,
  ConfigStore,
  DeviceConfigState,
  NewConfigDocument,
  ReleaseSelection,
  StagedConfigRecord,
  StagedProgress,
} from '../config-store.js';
import type { ConfigDocumentsTable, ConfigStagedTable, DeviceConfigTable } from '../schema.js';
import type { NewEvent, TimeContext } from '../store.js';
import { type Db, INSERT_CHUNK, insertEvents } from './events.js';
import { compileFilter } from './filter-sql.js';

/** Devices resolved per round when every device is (a document set or removed). */
const RESOLVE_PAGE = 1_000;

/** A document's current version, or its staged one (`staged`), which reaches only the devices released to. */
type DocumentMeta = Omit<ConfigDocumentsTable, 'document'> & { staged: boolean };
type DesiredValues = Pick<DeviceConfigTable, 'desired_version' | 'desired_hash' | 'desired_at'>;

const event = (type: string, deviceId: string | null, at: number, actor: string, data: object): NewEvent => ({
  at,
  type,
  deviceId,
  rolloutId: null,
  actor,
  reason: null,
  data: data as Record<string, unknown>,
});

function targetOf(row: Pick<ConfigDocumentsTable, 'filter' | 'device_id'>): ConfigTarget {
  if (row.device_id !== null) return { kind: 'device', deviceId: row.device_id };
  if (row.filter !== null) return { kind: 'filter', filter: row.filter };
  return { kind: 'fleet' };
}

function recordOf(row: ConfigDocumentsTable): ConfigDocumentRecord {
  return {
    name: row.name,
    version: row.version,
    hash: row.hash,
    document: JSON.parse(row.document) as JsonObject,
    target: targetOf(row),
    scope: row.scope,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    updatedBy: row.updated_by,
  };
}

const time = (v: number | null) => (v === null ? null : Number(v));

function stateOf(deviceId: string, row: DeviceConfigTable | undefined): DeviceConfigState {
  if (!row) return { deviceId, desired: null, applied: null, last: null, drift: false };
  return {
    deviceId,
    desired:
      row.desired_hash === null
        ? null
        : { version: row.desired_version ?? '', hash: row.desired_hash, at: time(row.desired_at) ?? 0 },
    applied:
      row.applied_hash === null
        ? null
        : { version: row.applied_version ?? '', hash: row.applied_hash, at: time(row.applied_at) ?? 0 },
    last:
      row.result === null || row.result_hash === null
        ? null
        : { result: row.result, hash: row.result_hash, output: row.output, at: time(row.reported_at) ?? 0 },
    drift: configDrift(row.desired_hash, row.applied_hash),
  };
}

/** The devices a document reaches: its target within the scope it was set under; undefined is every device. */
function reachOf(meta: Pick<DocumentMeta, 'scope' | 'filter' | 'device_id'>): FilterNode | undefined {
  const parts: FilterNode[] = [];
  // A stored filter or scope that no longer parses (the language changed under it) reaches no device.
  const parsed = (text: string): FilterNode =>
    parseFilter(text) ?? { kind: 'text', field: 'id', values: [], glob: false };
  if (meta.scope !== null) parts.push(parsed(meta.scope));
  if (meta.filter !== null) parts.push(parsed(meta.filter));
  if (meta.device_id !== null)
    parts.push({ kind: 'text', field: 'id', values: [meta.device_id], glob: false });
  return parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : { kind: 'and', children: parts };
}

/**
 * What setting or staging `doc` starts from: the document's current and staged rows (after checking there is room
 * for it), its content hash and target columns, and whether a row already holds exactly that.
 */
async function readForChange(trx: Db, doc: NewConfigDocument) {
  const existing = await trx
    .selectFrom('config_documents')
    .selectAll()
    .where('name', '=', doc.name)
    .executeTakeFirst();
  const staged = await stagedRow(trx, doc.name);
  await checkRoom(trx, doc, existing ?? staged);
  const hash = desiredConfig([{ name: doc.name, version: 0, target: 'fleet', document: doc.document }])!.hash;
  const filter = doc.target.kind === 'filter' ? doc.target.filter : null;
  const deviceId = doc.target.kind === 'device' ? doc.target.deviceId : null;
  const sameAs = (row: {
    hash: string;
    filter: string | null;
    device_id: string | null;
    scope: string | null;
  }) => row.hash === hash && row.filter === filter && row.device_id === deviceId && row.scope === doc.scope;
  return { existing, staged, hash, filter, deviceId, sameAs };
}

export class SqlConfig implements ConfigStore {
  constructor(private readonly s: SqlContext) {}

  set(
    doc: NewConfigDocument,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ document: ConfigDocumentRecord; changed: boolean }> {
    return this.s.db.transaction().execute(async (trx) => {
      const { existing, staged, hash, filter, deviceId, sameAs } = await readForChange(trx, doc);
      if (existing && sameAs(existing)) return { document: recordOf(existing), changed: false };
      // Set outright, a document leaves its staged version behind: the new version supersedes it everywhere.
      if (staged) await trx.deleteFrom('config_staged').where('name', '=', doc.name).execute();
      const row: ConfigDocumentsTable = {
        name: doc.name,
        version: Math.max(existing?.version ?? 0, staged?.version ?? 0) + 1,
        document: JSON.stringify(doc.document),
        hash,
        filter,
        device_id: deviceId,
        scope: doc.scope,
        created_at: existing ? Number(existing.created_at) : ctx.now,
        updated_at: ctx.now,
        updated_by: actor,
      };
      if (existing) await trx.updateTable('config_documents').set(row).where('name', '=', doc.name).execute();
      else await trx.insertInto('config_documents').values(row).execute();
      await insertEvents(trx, [
        event('config.set', deviceId, ctx.now, actor, { name: doc.name, version: row.version, hash }),
      ]);
      await this.resolveAll(trx, ctx);
      return { document: recordOf(row), changed: true };
    });
  }

  stage(
    doc: NewConfigDocument,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ staged: StagedConfigRecord; changed: boolean }> {
    return this.s.db.transaction().execute(async (trx) => {
      const { existing, staged: before, hash, filter, deviceId, sameAs } = await readForChange(trx, doc);
      if (before && sameAs(before)) return { staged: await this.stagedRecord(trx, before), changed: false };
      const row: ConfigStagedTable = {
        name: doc.name,
        version: Math.max(existing?.version ?? 0, before?.version ?? 0) + 1,
        document: JSON.stringify(doc.document),
        hash,
        filter,
        device_id: deviceId,
        scope: doc.scope,
        staged_at: ctx.now,
        staged_by: actor,
      };
      if (before) {
        // A new staged version starts with no device: the previous one's devices go back to the current version.
        await trx.deleteFrom('config_releases').where('name', '=', doc.name).execute();
        await trx.updateTable('config_staged').set(row).where('name', '=', doc.name).execute();
      } else await trx.insertInto('config_staged').values(row).execute();
      await insertEvents(trx, [
        event('config.staged', deviceId, ctx.now, actor, { name: doc.name, version: row.version, hash }),
      ]);
      if (before) await this.resolveAll(trx, ctx);
      return { staged: await this.stagedRecord(trx, row), changed: true };
    });
  }

  async staged(name: string): Promise<StagedConfigRecord | undefined> {
    const row = await stagedRow(this.s.db, name);
    return row && this.stagedRecord(this.s.db, row);
  }

  async listStaged(): Promise<StagedConfigRecord[]> {
    const rows = await this.s.db.selectFrom('config_staged').selectAll().orderBy('name').execute();
    const records: StagedConfigRecord[] = [];
    for (const row of rows) records.push(await this.stagedRecord(this.s.db, row));
    return records;
  }

  release(
    name: string,
    version: number,
    selection: ReleaseSelection,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<{ released: number; staged: StagedConfigRecord }> {
    return this.s.db.transaction().execute(async (trx) => {
      const row = await mustBeStaged(trx, name, version, scope);
      if (selection.deviceId !== undefined) {
        const device = await trx
          .selectFrom('devices')
          .select('id')
          .where('id', '=', selection.deviceId)
          .executeTakeFirst();
        if (!device) throw new FleetError('DEVICE_NOT_FOUND', `device ${selection.deviceId} does not exist`);
      }
      const parts: FilterNode[] = [];
      const reach = reachOf(row);
      if (reach) parts.push(reach);
      if (selection.filter) parts.push(selection.filter);
      if (selection.deviceId !== undefined)
        parts.push({ kind: 'text', field: 'id', values: [selection.deviceId], glob: false });
      let q = trx
        .selectFrom('devices')
        .select('id')
        .where('decommissioned_at', 'is', null)
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('config_releases')
                .select('config_releases.device_id')
                .whereRef('config_releases.device_id', '=', 'devices.id')
                .where('config_releases.name', '=', name),
            ),
          ),
        )
        .orderBy('id');
      if (parts.length > 0) {
        const where: FilterNode = parts.length === 1 ? parts[0]! : { kind: 'and', children: parts };
        q = q.where((eb) => compileFilter(eb, where, ctx));
      }
      if (selection.count !== undefined) q = q.limit(selection.count);
      const ids = (await q.execute()).map((r) => r.id);
      for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
        await trx
          .insertInto('config_releases')
          .values(
            ids.slice(i, i + INSERT_CHUNK).map((device_id) => ({
              name,
              device_id,
              version,
              released_at: ctx.now,
              released_by: actor,
            })),
          )
          .execute();
      }
      if (ids.length > 0) {
        await insertEvents(trx, [
          event('config.released', row.device_id, ctx.now, actor, { name, version, devices: ids.length }),
        ]);
        await this.resolve(trx, ids, new DocumentCache(trx, await this.metas(trx)), ctx);
      }
      return { released: ids.length, staged: await this.stagedRecord(trx, row) };
    });
  }

  promote(
    name: string,
    version: number,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<ConfigDocumentRecord> {
    return this.s.db.transaction().execute(async (trx) => {
      const staged = await mustBeStaged(trx, name, version, scope);
      const existing = await trx
        .selectFrom('config_documents')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      const { staged_at, staged_by, ...rest } = staged;
      const row: ConfigDocumentsTable = {
        ...rest,
        created_at: existing ? Number(existing.created_at) : ctx.now,
        updated_at: ctx.now,
        updated_by: actor,
      };
      if (existing) await trx.updateTable('config_documents').set(row).where('name', '=', name).execute();
      else await trx.insertInto('config_documents').values(row).execute();
      await trx.deleteFrom('config_staged').where('name', '=', name).execute();
      await insertEvents(trx, [
        event('config.set', row.device_id, ctx.now, actor, {
          name,
          version,
          hash: row.hash,
          promoted: true,
        }),
      ]);
      await this.resolveAll(trx, ctx);
      return recordOf(row);
    });
  }

  unstage(
    name: string,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<StagedConfigRecord | undefined> {
    return this.s.db.transaction().execute(async (trx) => {
      const row = await stagedRow(trx, name);
      if (!row) return undefined;
      mustShareScope(row, scope);
      const record = await this.stagedRecord(trx, row);
      await trx.deleteFrom('config_staged').where('name', '=', name).execute();
      await insertEvents(trx, [
        event('config.unstaged', row.device_id, ctx.now, actor, { name, version: row.version }),
      ]);
      if (record.progress.released > 0) await this.resolveAll(trx, ctx);
      return record;
    });
  }

  /** The staged row with the document's current version and what the devices it was released to reported. */
  private async stagedRecord(db: Db, row: ConfigStagedTable): Promise<StagedConfigRecord> {
    const current = await db
      .selectFrom('config_documents')
      .select('version')
      .where('name', '=', row.name)
      .executeTakeFirst();
    return {
      name: row.name,
      version: row.version,
      hash: row.hash,
      document: JSON.parse(row.document) as JsonObject,
      target: targetOf(row),
      scope: row.scope,
      stagedAt: Number(row.staged_at),
      stagedBy: row.staged_by,
      currentVersion: current?.version ?? null,
      progress: await progressOf(db, row.name, row.version),
    };
  }

  async list(): Promise<ConfigDocumentRecord[]> {
    const rows = await this.s.db.selectFrom('config_documents').selectAll().orderBy('name').execute();
    return rows.map(recordOf);
  }

  async get(name: string): Promise<ConfigDocumentRecord | undefined> {
    const row = await this.s.db
      .selectFrom('config_documents')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && recordOf(row);
  }

  remove(
    name: string,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<ConfigDocumentRecord | undefined> {
    return this.s.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('config_documents')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      if (!existing) return undefined;
      mustShareScope(existing, scope);
      await trx.deleteFrom('config_documents').where('name', '=', name).execute();
      await trx.deleteFrom('config_staged').where('name', '=', name).execute();
      await insertEvents(trx, [
        event('config.removed', existing.device_id, ctx.now, actor, { name, version: existing.version }),
      ]);
      await this.resolveAll(trx, ctx);
      return recordOf(existing);
    });
  }

  async offers(deviceIds: readonly string[], ctx: TimeContext): Promise<Map<string, ConfigOffer>> {
    const offers = new Map<string, ConfigOffer>();
    if (deviceIds.length === 0) return offers;
    // Most fleets most of the time: no document, nothing to resolve (removal already cleared every device).
    if ((await this.metas(this.s.db)).length === 0) return offers;
    return this.s.db.transaction().execute(async (trx) => {
      const metas = await this.metas(trx);
      const documents = new DocumentCache(trx, metas);
      const rows = await this.resolve(trx, deviceIds, documents, ctx);
      for (const [id, { row, sources }] of rows) {
        if (row.desired_hash === null || row.desired_version === null) continue;
        const offer: ConfigOffer = { version: row.desired_version, hash: row.desired_hash };
        // The document rides along until the device reports on this hash, applied or failed (a failure is
        // retried when a new version is set, not on every heartbeat).
        if (row.result_hash !== row.desired_hash) {
          const desired = await documents.desired(sources);
          if (desired !== 'stale' && desired?.hash === row.desired_hash) offer.document = desired.document;
        }
        offers.set(id, offer);
      }
      return offers;
    });
  }

  async ofDevice(deviceId: string, ctx: TimeContext): Promise<DeviceConfigState | undefined> {
    const device = await this.s.db
      .selectFrom('devices')
      .select('id')
      .where('id', '=', deviceId)
      .executeTakeFirst();
    if (!device) return undefined;
    const rows = await this.s.db
      .transaction()
      .execute(async (trx) =>
        this.resolve(trx, [deviceId], new DocumentCache(trx, await this.metas(trx)), ctx),
      );
    return stateOf(deviceId, rows.get(deviceId)?.row);
  }

  async statesOf(deviceIds: readonly string[]): Promise<Map<string, DeviceConfigState>> {
    const states = new Map<string, DeviceConfigState>();
    if (deviceIds.length === 0) return states;
    const rows = await this.s.db
      .selectFrom('device_config')
      .selectAll()
      .where('device_id', 'in', [...deviceIds])
      .execute();
    for (const row of rows) states.set(row.device_id, stateOf(row.device_id, row));
    return states;
  }

  report(deviceId: string, report: ConfigReport, ctx: TimeContext): Promise<DeviceConfigState> {
    return this.s.db.transaction().execute(async (trx) => {
      const output = report.output === undefined ? null : report.output.slice(-MAX_CONFIG_OUTPUT);
      const before = await trx
        .selectFrom('device_config')
        .selectAll()
        .where('device_id', '=', deviceId)
        .executeTakeFirst();
      const repeated = before?.result === report.result && before.result_hash === report.hash;
      const applied =
        report.result === 'applied'
          ? { applied_version: report.version, applied_hash: report.hash, applied_at: ctx.now }
          : {};
      const values = {
        result: report.result,
        result_hash: report.hash,
        output,
        reported_at: ctx.now,
        ...applied,
      };
      await trx
        .insertInto('device_config')
        .values({ device_id: deviceId, ...values })
        .onConflict((oc) => oc.column('device_id').doUpdateSet(values))
        .execute();
      // Sent again (a lost answer), a report changes nothing more: one event per outcome.
      if (!repeated) {
        await insertEvents(trx, [
          event(`config.${report.result}`, deviceId, ctx.now, `device:${deviceId}`, {
            version: report.version,
            hash: report.hash,
          }),
        ]);
      }
      const row = await trx
        .selectFrom('device_config')
        .selectAll()
        .where('device_id', '=', deviceId)
        .executeTakeFirst();
      return stateOf(deviceId, row);
    });
  }

  private async metas(db: Db): Promise<DocumentMeta[]> {
    const current = await db
      .selectFrom('config_documents')
      .select([
        'name',
        'version',
        'hash',
        'filter',
        'device_id',
        'scope',
        'created_at',
        'updated_at',
        'updated_by',
      ])
      .orderBy('name')
      .execute();
    const staged = await db
      .selectFrom('config_staged')
      .select(['name', 'version', 'hash', 'filter', 'device_id', 'scope', 'staged_at', 'staged_by'])
      .orderBy('name')
      .execute();
    return [
      ...current.map((m) => ({ ...m, staged: false })),
      ...staged.map(({ staged_at, staged_by, ...m }) => ({
        ...m,
        created_at: staged_at,
        updated_at: staged_at,
        updated_by: staged_by,
        staged: true,
      })),
    ];
  }

  /**
   * A staged version is a device's source only where it was released to the device; there it takes the place of
   * the document's current version.
   */
  private async keepReleased(
    trx: Db,
    chunk: readonly string[],
    metas: readonly DocumentMeta[],
    sourcesOf: Map<string, DocumentMeta[]>,
  ): Promise<void> {
    const staged = metas.filter((m) => m.staged);
    if (staged.length === 0) return;
    const rows = await trx
      .selectFrom('config_releases')
      .select(['name', 'device_id', 'version'])
      .where('device_id', 'in', [...chunk])
      .where(
        'name',
        'in',
        staged.map((m) => m.name),
      )
      .execute();
    const released = new Set(rows.map((r) => `${r.device_id}\n${r.name}@${r.version}`));
    for (const id of chunk) {
      const sources = sourcesOf.get(id);
      if (!sources) continue;
      const holds = new Set(
        sources.filter((m) => m.staged && released.has(`${id}\n${m.name}@${m.version}`)).map((m) => m.name),
      );
      sourcesOf.set(
        id,
        sources.filter((m) => (m.staged ? holds.has(m.name) : !holds.has(m.name))),
      );
    }
  }

  /** Every device, a page at a time: what a changed document changes. */
  private async resolveAll(trx: Db, ctx: TimeContext): Promise<void> {
    const documents = new DocumentCache(trx, await this.metas(trx));
    let after: string | undefined;
    for (;;) {
      let q = trx.selectFrom('devices').select('id').orderBy('id').limit(RESOLVE_PAGE);
      if (after !== undefined) q = q.where('id', '>', after);
      const ids = (await q.execute()).map((r) => r.id);
      if (ids.length === 0) return;
      await this.resolve(trx, ids, documents, ctx);
      after = ids[ids.length - 1];
    }
  }

  /**
   * Resolves these devices against the documents: which apply to each (one query per targeted document), and,
   * where that changed, the merged document's hash, written to `device_config`. Returns each device's row.
   */
  private async resolve(
    trx: Db,
    deviceIds: readonly string[],
    documents: DocumentCache,
    ctx: TimeContext,
  ): Promise<Map<string, { row: DeviceConfigTable; sources: DocumentMeta[] }>> {
    const metas = documents.metas;
    const sourcesOf = new Map<string, DocumentMeta[]>(deviceIds.map((id) => [id, []]));
    for (let i = 0; i < deviceIds.length; i += INSERT_CHUNK) {
      const chunk = deviceIds.slice(i, i + INSERT_CHUNK);
      for (const meta of metas) {
        const reach = reachOf(meta);
        const matched =
          reach === undefined
            ? chunk
            : (
                await trx
                  .selectFrom('devices')
                  .select('id')
                  .where('id', 'in', chunk)
                  .where((eb) => compileFilter(eb, reach, ctx))
                  .execute()
              ).map((r) => r.id);
        for (const id of matched) sourcesOf.get(id)?.push(meta);
      }
      await this.keepReleased(trx, chunk, metas, sourcesOf);
    }
    const existing = new Map<string, DeviceConfigTable>();
    for (let i = 0; i < deviceIds.length; i += INSERT_CHUNK) {
      const rows = await trx
        .selectFrom('device_config')
        .selectAll()
        .where('device_id', 'in', deviceIds.slice(i, i + INSERT_CHUNK))
        .execute();
      for (const r of rows) existing.set(r.device_id, r);
    }
    const result = new Map<string, { row: DeviceConfigTable; sources: DocumentMeta[] }>();
    // Devices that now hold something else, grouped by what: one statement per chunk of each group.
    const changes = new Map<string, { values: DesiredValues; update: string[]; insert: string[] }>();
    for (const [id, sources] of sourcesOf) {
      const version = sources.length === 0 ? null : desiredVersion(sources.map(sourceKey));
      const before = existing.get(id);
      let row = before;
      const desired =
        (before?.desired_version ?? null) !== version ? await documents.desired(sources) : 'same';
      // Stale: a document changed under this read; the change's own resolution writes these devices.
      if (desired !== 'same' && desired !== 'stale') {
        const values: DesiredValues = {
          desired_version: version,
          desired_hash: desired?.hash ?? null,
          desired_at: desired ? ctx.now : null,
        };
        const key = `${version}\n${values.desired_hash}`;
        const change = changes.get(key) ?? { values, update: [], insert: [] };
        (before ? change.update : change.insert).push(id);
        changes.set(key, change);
        row = { ...emptyRow(id), ...before, ...values };
      }
      if (row) result.set(id, { row, sources });
    }
    for (const { values, update, insert } of changes.values()) {
      for (let i = 0; i < update.length; i += INSERT_CHUNK) {
        await trx
          .updateTable('device_config')
          .set(values)
          .where('device_id', 'in', update.slice(i, i + INSERT_CHUNK))
          .execute();
      }
      for (let i = 0; i < insert.length; i += INSERT_CHUNK) {
        // Another replica's heartbeat may have resolved the same device meanwhile: the same values, so either wins.
        await trx
          .insertInto('device_config')
          .values(
            insert.slice(i, i + INSERT_CHUNK).map((device_id) => ({ ...emptyRow(device_id), ...values })),
          )
          .onConflict((oc) => oc.column('device_id').doUpdateSet(values))
          .execute();
      }
    }
    return result;
  }
}

const sourceKey = (m: DocumentMeta) => ({ name: m.name, version: m.version, target: targetOf(m).kind });

const emptyRow = (deviceId: string): DeviceConfigTable => ({
  device_id: deviceId,
  desired_version: null,
  desired_hash: null,
  desired_at: null,
  applied_version: null,
  applied_hash: null,
  applied_at: null,
  result: null,
  result_hash: null,
  output: null,
  reported_at: null,
});

export const stagedRow = (db: Db, name: string): Promise<ConfigStagedTable | undefined> =>
  db.selectFrom('config_staged').selectAll().where('name', '=', name).executeTakeFirst();

/** The staged version of `name`, which must be `version` (the operator's view is not out of date). */
export async function mustBeStaged(
  db: Db,
  name: string,
  version: number,
  scope: string | null,
): Promise<ConfigStagedTable> {
  const row = await stagedRow(db, name);
  if (!row) throw new FleetError('NOT_FOUND', `configuration ${name} has no staged version`);
  mustShareScope(row, scope);
  if (row.version !== version) {
    throw new FleetError(
      'CONFLICT',
      `configuration ${name}: version ${row.version} is staged, not ${version}`,
    );
  }
  return row;
}

/**
 * Before a document or a staged version is written: a scoped setter changes only its own scope's, a new name
 * must fit under the fleet's limit, a device target must exist.
 */
async function checkRoom(
  trx: Db,
  doc: NewConfigDocument,
  existing: Pick<ConfigDocumentsTable, 'name' | 'scope'> | undefined,
): Promise<void> {
  if (existing) mustShareScope(existing, doc.scope);
  else {
    const names = new Set([
      ...(await trx.selectFrom('config_documents').select('name').execute()).map((r) => r.name),
      ...(await trx.selectFrom('config_staged').select('name').execute()).map((r) => r.name),
    ]);
    if (names.size >= MAX_CONFIG_DOCUMENTS) {
      throw new FleetError(
        'CONFLICT',
        `at most ${MAX_CONFIG_DOCUMENTS} configuration documents; remove one first`,
      );
    }
  }
  if (doc.target.kind === 'device') {
    const device = await trx
      .selectFrom('devices')
      .select('id')
      .where('id', '=', doc.target.deviceId)
      .executeTakeFirst();
    if (!device) throw new FleetError('DEVICE_NOT_FOUND', `device ${doc.target.deviceId} does not exist`);
  }
}

/**
 * What the devices a staged version was released to reported on the configuration they now hold (which includes
 * it): applied or failed on their desired hash; the rest have not reported yet. With `window`, only the devices
 * released from `from` and before `to` (a configuration rollout's phase).
 */
export async function progressOf(
  db: Db,
  name: string,
  version: number,
  window?: { from: number; to?: number | undefined },
): Promise<StagedProgress> {
  const rows = await db
    .selectFrom('config_releases')
    .leftJoin('device_config', 'device_config.device_id', 'config_releases.device_id')
    .select(['device_config.result', (eb) => eb.fn.countAll<number>().as('n')])
    .where('config_releases.name', '=', name)
    .where('config_releases.version', '=', version)
    .$if(window !== undefined, (q) => q.where('config_releases.released_at', '>=', window!.from))
    .$if(window?.to !== undefined, (q) => q.where('config_releases.released_at', '<', window!.to!))
    .where((eb) =>
      eb.or([
        eb('device_config.result_hash', 'is', null),
        eb('device_config.result_hash', '=', eb.ref('device_config.desired_hash')),
      ]),
    )
    .groupBy('device_config.result')
    .execute();
  const released = await db
    .selectFrom('config_releases')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('name', '=', name)
    .where('version', '=', version)
    .$if(window !== undefined, (q) => q.where('released_at', '>=', window!.from))
    .$if(window?.to !== undefined, (q) => q.where('released_at', '<', window!.to!))
    .executeTakeFirstOrThrow();
  const of = (result: string) => Number(rows.find((r) => r.result === result)?.n ?? 0);
  return { released: Number(released.n), applied: of('applied'), failed: of('failed') };
}

/** How many devices (not decommissioned) a staged version applies to: those a release may reach. */
export async function stagedReach(db: Db, row: ConfigStagedTable, ctx: TimeContext): Promise<number> {
  const reach = reachOf(row);
  let q = db
    .selectFrom('devices')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('decommissioned_at', 'is', null);
  if (reach) q = q.where((eb) => compileFilter(eb, reach, ctx));
  return Number((await q.executeTakeFirstOrThrow()).n);
}

/** A scoped principal changes only the documents set under its own scope; an unscoped one changes any. */
function mustShareScope(existing: Pick<ConfigDocumentsTable, 'name' | 'scope'>, scope: string | null): void {
  if (scope !== null && existing.scope !== scope) {
    throw new FleetError(
      'FORBIDDEN',
      `configuration ${existing.name} was set outside your scope "${scope}"`,
      {
        scope,
      },
    );
  }
}

type Desired = ReturnType<typeof desiredConfig> | 'stale';

/**
 * The documents' metadata, their bodies read once when first needed, and the merged document of each set of
 * sources. A body whose version moved on since the metadata was read (a document set meanwhile) is `stale`.
 */
class DocumentCache {
  private bodies: Map<string, JsonObject> | undefined;
  private readonly merged = new Map<string, Desired>();

  constructor(
    private readonly db: Db,
    readonly metas: DocumentMeta[],
  ) {}

  async desired(sources: DocumentMeta[]): Promise<Desired> {
    if (sources.length === 0) return undefined;
    const key = desiredVersion(sources.map(sourceKey));
    if (this.merged.has(key)) return this.merged.get(key);
    if (this.bodies === undefined) {
      const names = [...new Set(this.metas.map((m) => m.name))];
      const current = await this.db
        .selectFrom('config_documents')
        .select(['name', 'version', 'document'])
        .where('name', 'in', names)
        .execute();
      const staged = await this.db
        .selectFrom('config_staged')
        .select(['name', 'version', 'document'])
        .where('name', 'in', names)
        .execute();
      this.bodies = new Map(
        [...current, ...staged].map((r) => [`${r.name}@${r.version}`, JSON.parse(r.document) as JsonObject]),
      );
    }
    const resolved: ConfigSource[] = [];
    for (const m of sources) {
      const document = this.bodies.get(`${m.name}@${m.version}`);
      if (document === undefined) return 'stale';
      resolved.push({ ...sourceKey(m), document });
    }
    const desired = desiredConfig(resolved);
    this.merged.set(key, desired);
    return desired;
  }
}
