/**
 * Resident memory of the real server (`fleetd server` child process, SQLite) holding 100,000 devices:
 * imported through the API, then one heartbeat from each with its own credential. Baseline: the same
 * server, just started, with none.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { type BenchResult, fmtInt, log, spawnFleetd, tempDir } from './support.js';

const DEVICES = 100_000;
const IMPORT_CHUNK = 10_000;
const CONCURRENCY = 50;
/** What a server holding a fleet this size may use beyond its idle footprint (2 KB a device). */
const TARGET_EXTRA_MB = 200;

const deviceId = (i: number) => `mem-${String(i).padStart(6, '0')}`;
const MB = 2 ** 20;

/** VmRSS of a process, in bytes (Linux). */
function rss(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!line) throw new Error(`no VmRSS for process ${pid}`);
  return Number(line[1]) * 1024;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 3_000));

export async function runServerMemory(): Promise<BenchResult> {
  const dir = tempDir('fleetd-bench-memory-');
  const server = await spawnFleetd(dir.path);
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss(server.pid));
  }, 100);
  try {
    const token = readFileSync(join(dir.path, 'admin-token'), 'utf8').trim();
    await settle();
    const idle = rss(server.pid);
    log(`idle RSS ${(idle / MB).toFixed(0)} MB; importing ${fmtInt(DEVICES)} devices through the API`);

    for (let from = 0; from < DEVICES; from += IMPORT_CHUNK) {
      const devices = Array.from({ length: Math.min(IMPORT_CHUNK, DEVICES - from) }, (_, k) => ({
        id: deviceId(from + k),
        firmware_version: '2.3.0',
        hardware_type: 'pos-x200',
        tags: { region: ['east', 'west', 'central'][(from + k) % 3]!, store: `s-${(from + k) % 5000}` },
      }));
      const response = await fetch(`${server.url}/api/v1/devices/import`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ devices }),
      });
      if (response.status !== 200) throw new Error(`import: ${response.status} ${await response.text()}`);
    }

    // Each device gets its own credential. There is no bulk API for it (a device enrols one at a time), so
    // the hashes go straight into the server's database file, which the server reads them from anyway.
    const credentials = Array.from({ length: DEVICES }, (_, i) => deviceCredential(deviceId(i)));
    const db = new BetterSqlite3(join(dir.path, 'fleetd.db'));
    db.pragma('busy_timeout = 5000');
    const setHash = db.prepare('UPDATE devices SET credential_hash = ? WHERE id = ?');
    db.transaction(() => {
      for (const [i, c] of credentials.entries()) {
        setHash.run(hashSecret(splitDeviceCredential(c)!.secret), deviceId(i));
      }
    })();
    db.close();

    log(`one heartbeat from each device (${CONCURRENCY} at a time)`);
    let next = 0;
    let failures = 0;
    const worker = async () => {
      for (let i = next++; i < DEVICES; i = next++) {
        const response = await fetch(`${server.url}/api/device/v1/heartbeat`, {
          method: 'POST',
          headers: { authorization: `Bearer ${credentials[i]}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            device_id: deviceId(i),
            firmware_version: '2.3.0',
            timestamp: new Date().toISOString(),
            battery: i % 100,
            metrics: { cpu: i % 97 },
          }),
        });
        await response.arrayBuffer();
        if (response.status !== 200) failures++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await settle();
    const loaded = rss(server.pid);
    const extra = loaded - idle;
    log(
      `loaded RSS ${(loaded / MB).toFixed(0)} MB (peak ${(peak / MB).toFixed(0)} MB), ${failures} failures`,
    );
    return {
      rows: [
        {
          name: 'server-memory',
          figure: `RSS ${(loaded / MB).toFixed(0)} MB with ${fmtInt(DEVICES)} devices (+${(extra / MB).toFixed(0)} MB, ${fmtInt(extra / DEVICES)} B a device); peak ${(peak / MB).toFixed(0)} MB`,
          baseline: `the same server idle with none: ${(idle / MB).toFixed(0)} MB`,
          ratio: (loaded / idle).toFixed(2),
          target: `within ${TARGET_EXTRA_MB} MB of idle, every heartbeat answered 200`,
          pass: extra < TARGET_EXTRA_MB * MB && failures === 0,
        },
      ],
      details: [
        `\`fleetd server --log-level warn\` (SQLite, default 256 MiB page cache) in its own child process: RSS ` +
          `(VmRSS) 3 s after start, then 3 s after ${fmtInt(DEVICES)} devices were imported through ` +
          `\`POST /api/v1/devices/import\` (chunks of ${fmtInt(IMPORT_CHUNK)}, two tags each) and each sent one ` +
          `heartbeat with its own credential (${CONCURRENCY} concurrent fetch clients); peak sampled every 100 ms. ` +
          'Ratio = loaded / idle.',
        `- Idle: ${(idle / MB).toFixed(1)} MB; loaded: ${(loaded / MB).toFixed(1)} MB; peak: ${(peak / MB).toFixed(1)} MB`,
        `- Heartbeats not answered 200: ${fmtInt(failures)}`,
      ],
    };
  } finally {
    clearInterval(sampler);
    await server.stop();
    dir.remove();
  }
}
