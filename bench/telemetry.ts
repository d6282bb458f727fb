/**
 * Telemetry ingest and retention (docs/telemetry.md), on SQLite through the store:
 *
 * 1. Ingest share: 100,000 devices reporting every 5 min is 333 reports/s. The store's telemetry throughput
 *    (one report = 6 metrics, in batches of 1,000 as the group commit writes them) is measured, and the share of
 *    the store's time those 333 reports/s take is set against the goal (< 15 %). For scale, the heartbeat rate
 *    of the same store (batches of 1,000, as the group commit writes them) is printed beside it.
 * 2. Boundedness: devices report every 30 min for `days` simulated days by an injected clock, pruned every
 *    simulated 6 h; the rows held are printed every 15 days. Raw samples must stop growing after 48 h and
 *    hourly aggregates after 90 days.
 *
 *   node dist/bench/telemetry.js [devices] [days] [retention devices]   (default 100,000, 120, 20)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { DEFAULT_TELEMETRY_RETENTION, HOUR_MS } from '../src/core/telemetry.js';
import { hashSecret } from '../src/registry/credentials.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';

const devices = Number(process.argv[2] ?? 100_000);
const days = Number(process.argv[3] ?? 120);
const retentionDevices = Number(process.argv[4] ?? 20);
const START = Date.parse('2026-03-02T00:00:00Z');
const DAY = 24 * HOUR_MS;
const GOAL_SHARE = 0.15;
const REPORTS_PER_SEC = devices / 300;

const metricsAt = (i: number) => ({
  cpu_pct: (i * 7) % 100,
  mem_used_pct: 40 + (i % 20),
  disk_free_pct: 60 - (i % 30),
  temp_c: 45 + (i % 10),
  uptime_s: 3600 + i,
  reboots: 0,
});

async function ingestShare(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetd-bench-telemetry-'));
  const store = await openSqliteStore(join(dir, 'fleetd.db'));
  try {
    const ctx = { now: START, thresholds: DEFAULT_THRESHOLDS };
    const ids = Array.from({ length: devices }, (_, i) => `pos-${String(i).padStart(6, '0')}`);
    for (let i = 0; i < ids.length; i += 10_000) {
      await store.importDevices(
        ids.slice(i, i + 10_000).map((id) => ({ id })),
        ctx,
        'bench',
      );
    }
    const hash = hashSecret('bench-secret');
    await store.setCredentials(
      ids.map((id) => ({ id, credentialHash: hash })),
      ctx,
      'bench',
    );

    // Heartbeats: one round of the whole fleet in batches of 1,000.
    let t = process.hrtime.bigint();
    for (let i = 0; i < ids.length; i += 1_000) {
      const batch = ids
        .slice(i, i + 1_000)
        .map((id) => ({ credentialHash: hash, heartbeat: { deviceId: id } }));
      await store.recordHeartbeats(batch, { now: START + 1_000, thresholds: DEFAULT_THRESHOLDS });
    }
    const heartbeatSec = Number(process.hrtime.bigint() - t) / 1e9;
    const heartbeatRate = ids.length / heartbeatSec;

    // Telemetry: one round of the whole fleet in batches of 1,000, as the group commit writes them.
    t = process.hrtime.bigint();
    for (let i = 0; i < ids.length; i += 1_000) {
      const batch = ids
        .slice(i, i + 1_000)
        .map((id, k) => ({ deviceId: id, report: { metrics: metricsAt(i + k) } }));
      await store.telemetry.recordBatch(batch, START + 2_000, 60_000);
    }
    const telemetrySec = Number(process.hrtime.bigint() - t) / 1e9;
    const telemetryRate = ids.length / telemetrySec;
    const share = REPORTS_PER_SEC / telemetryRate;
    console.log(
      `devices: ${devices.toLocaleString('en')}, each reporting every 5 min: ${Math.round(REPORTS_PER_SEC)} reports/s`,
    );
    console.log(`heartbeats (batches of 1,000): ${Math.round(heartbeatRate).toLocaleString('en')}/s`);
    console.log(
      `telemetry reports (6 metrics, batches of 1,000): ${Math.round(telemetryRate).toLocaleString('en')}/s`,
    );
    console.log(
      `ingest share: ${Math.round(REPORTS_PER_SEC)} reports/s take ${(share * 100).toFixed(1)} % of the store's time ` +
        `(goal < ${GOAL_SHARE * 100} %): ${share < GOAL_SHARE ? 'met' : 'MISSED'}`,
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bounded(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetd-bench-telemetry-'));
  const store = await openSqliteStore(join(dir, 'fleetd.db'));
  try {
    const ids = Array.from({ length: retentionDevices }, (_, i) => `dev-${i}`);
    await store.importDevices(
      ids.map((id) => ({ id })),
      { now: START, thresholds: DEFAULT_THRESHOLDS },
      'bench',
    );
    const step = 30 * 60_000;
    const sizes: string[] = [];
    let maxSamples = 0;
    let samplesAfterWindow = 0;
    for (let now = START, n = 0; now <= START + days * DAY; now += step, n++) {
      for (const [i, id] of ids.entries())
        await store.telemetry.record(id, { metrics: metricsAt(n + i) }, now, 60_000);
      if (n % 12 === 0) await store.telemetry.prune(now, DEFAULT_TELEMETRY_RETENTION);
      const day = (now - START) / DAY;
      if (Number.isInteger(day) && day % 15 === 0) {
        const s = await store.telemetry.size();
        sizes.push(
          `day ${String(day).padStart(3)}: ${s.samples} raw samples, ${s.hourly} hourly rows, ${s.latest} latest`,
        );
        if (day > 2) samplesAfterWindow = Math.max(samplesAfterWindow, s.samples);
        maxSamples = Math.max(maxSamples, s.hourly);
      }
    }
    const perMetric = retentionDevices * 6;
    console.log(
      `\nretention: ${retentionDevices} devices, 6 metrics, a report every 30 min for ${days} days (pruned every 6 h)`,
    );
    for (const line of sizes) console.log(`  ${line}`);
    const rawBound = perMetric * (DEFAULT_TELEMETRY_RETENTION.rawMs / step + 12 + 1);
    const hourlyBound = perMetric * (DEFAULT_TELEMETRY_RETENTION.hourlyMs / HOUR_MS + 6 + 2);
    console.log(
      `raw samples at most ${samplesAfterWindow} (bound ${rawBound}), hourly rows at most ${maxSamples} (bound ${hourlyBound}): ` +
        (samplesAfterWindow <= rawBound && maxSamples <= hourlyBound ? 'bounded' : 'NOT BOUNDED'),
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await ingestShare();
await bounded();
