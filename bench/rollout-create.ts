/**
 * Creating a rollout over the filter-query fleet (1,000,000 devices, SQLite) through the real service
 * (`planFor` as a dry run, then `createRollout`, which plans again and writes), against a hand-written
 * `INSERT INTO device_updates … SELECT … FROM devices` of the same devices on an identical copy of the
 * database. `BENCH_DEVICES=<n>` runs a smaller fleet (the row says so).
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { parseRolloutSpec } from '../src/core/rollout/spec.js';
import { createRollout, planFor } from '../src/engine/rollout-service.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import { fleet } from './filter-query.js';
import { type BenchResult, fmtInt, log, scaled, seedDevices, tempDir } from './support.js';

const DEVICES = scaled(Number(process.env.BENCH_DEVICES ?? 1_000_000), 1_000);
const TARGET_S = 7;
/** Every device: the release fits all three hardware types and is newer than any firmware in the fleet. */
const SPEC = { name: 'bench', release: 'bench-fw@9.0.0', filter: '', strategy: 'immediate' } as const;
const RAW_INSERT = `
  INSERT INTO device_updates (id, device_id, release_id, rollout_id, state, action, last_seq, progress, error,
    attempts, from_version, created_at, updated_at, finished_at, phase, purpose, not_before, granted_at, slot_key)
  SELECT 'upd_' || lower(hex(randomblob(9))), d.id, @releaseId, @rolloutId, 'pending', 'install', 0, NULL, NULL,
    0, d.firmware_version, @now, @now, NULL, 0, 'update', NULL, NULL, NULL
  FROM devices d WHERE d.decommissioned_at IS NULL`;

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function runRolloutCreate(): Promise<BenchResult> {
  const dir = tempDir('fleetd-bench-rollout-');
  try {
    const file = join(dir.path, 'fleetd.db');
    const copy = join(dir.path, 'baseline.db');
    const now = Date.now();
    const ctx = { now, thresholds: DEFAULT_THRESHOLDS };
    let store = await openSqliteStore(file);
    log(`seeding ${fmtInt(DEVICES)} devices through Store.importDevices`);
    await seedDevices(store, DEVICES, fleet(now), now);
    await store.releases.create(
      {
        id: 'rel_bench',
        name: 'bench-fw',
        version: '9.0.0',
        type: 'firmware',
        hardware: ['pos-x200', 'pos-x300', 'kiosk-k1'],
        size: 1,
        sha256: '0'.repeat(64),
        manifest: '{}',
        signature: '',
        keyId: '',
        allowDowngrade: false,
        createdAt: now,
      },
      'bench',
    );
    await store.close();
    // Closing checkpoints the log into the file; copy whatever is left too, so both databases are identical.
    copyFileSync(file, copy);
    if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`);

    store = await openSqliteStore(file);
    const spec = parseRolloutSpec(SPEC);
    log('dry run (planFor)');
    let started = performance.now();
    // Only its size is kept: a server does not hold a dry run's plan while the rollout is created.
    const dryDevices = (await planFor(store, spec, ctx)).devices.length;
    const dryMs = performance.now() - started;
    log(`creating the rollout (createRollout: plan + write), dry run took ${seconds(dryMs)}`);
    started = performance.now();
    const { rollout, plan } = await createRollout(store, spec, ctx, 'bench');
    const createMs = performance.now() - started;
    const written = await store.db
      .selectFrom('device_updates')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('rollout_id', '=', rollout.id)
      .executeTakeFirstOrThrow();
    await store.close();
    log(`created in ${seconds(createMs)}: ${fmtInt(Number(written.n))} device updates`);

    log('raw SQL: INSERT … SELECT on the copy');
    const raw = new BetterSqlite3(copy);
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    raw.pragma('foreign_keys = ON');
    started = performance.now();
    const rawRows = raw.transaction(() => {
      raw
        .prepare(`INSERT INTO rollouts (id, name, release_id, spec, strategy, state, current_phase, phase_starts,
          gates, approved_phase, promoted, targets, reason, created_by, created_at, updated_at, started_at,
          finished_at, lease_owner, lease_until)
          VALUES ('ro_raw', 'raw', 'rel_bench', '{}', 'immediate', 'running', 0, '[]', '[]', -1, 0, 0, NULL,
          'bench', @now, @now, @now, NULL, NULL, NULL)`)
        .run({ now });
      return raw.prepare(RAW_INSERT).run({ releaseId: 'rel_bench', rolloutId: 'ro_raw', now }).changes;
    })();
    const rawMs = performance.now() - started;
    raw.close();
    log(`raw SQL inserted ${fmtInt(rawRows)} rows in ${seconds(rawMs)}`);

    const same = Number(written.n) === rawRows;
    const scale = DEVICES === 1_000_000 ? '' : ` (${fmtInt(DEVICES)} devices, not 1,000,000)`;
    return {
      rows: [
        {
          name: 'rollout-create',
          figure: `${seconds(createMs)} for ${fmtInt(Number(written.n))} device updates${scale}; dry run ${seconds(dryMs)}`,
          baseline: `raw SQL INSERT … SELECT: ${seconds(rawMs)}`,
          ratio: (createMs / rawMs).toFixed(2),
          target: `< ${TARGET_S} s, as many rows as raw SQL`,
          pass: createMs < TARGET_S * 1000 && same,
        },
      ],
      details: [
        `An immediate rollout of a release that fits every device (filter empty) over ${fmtInt(DEVICES)} devices ` +
          'seeded as in filter-query (SQLite, synchronous=normal), created in-process through the service ' +
          '(`createRollout`: plan, rollout row, one device update per device, superseding, the creation event). ' +
          'Baseline: the same rows written by one `INSERT INTO device_updates … SELECT … FROM devices WHERE ' +
          'decommissioned_at IS NULL` with better-sqlite3 on a copy of the database taken before. ' +
          'Ratio = service / raw SQL (lower is better).',
        `- Dry run (\`planFor\`, no write): ${seconds(dryMs)}; plan: ${fmtInt(plan.counts.targets)} targets` +
          ` of ${fmtInt(dryDevices)} devices`,
        `- \`createRollout\` (plan + write): ${seconds(createMs)}; ${fmtInt(Number(written.n))} device updates written`,
        `- Raw SQL: ${seconds(rawMs)}; ${fmtInt(rawRows)} rows${same ? ' (same count)' : ' — COUNT DIFFERS'}`,
      ],
    };
  } finally {
    dir.remove();
  }
}
