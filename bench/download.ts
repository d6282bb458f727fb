/**
 * Artifact download: 100 devices fetch a 500 MB artifact at once from the real server, against nginx
 * (Debian's) serving the same file from the same disk in the same run. Reports aggregate throughput, the
 * ratio to nginx, and the server's resident memory at idle and at its peak during the downloads.
 * The clients are curl processes (writing to /dev/null), the same for both servers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsBlobStore } from '../src/artifacts/blob-store.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { canonicalManifest } from '../src/core/manifest.js';
import { deviceCredential, hashSecret, splitDeviceCredential } from '../src/registry/credentials.js';
import { Keyring } from '../src/server/keyring.js';
import { openSqliteStore } from '../src/store/sqlite/connect.js';
import { type BenchResult, fmtInt, log, machine, scaled, spawnFleetd, tempDir } from './support.js';

const SIZE_MB = scaled(Number(process.env.BENCH_DOWNLOAD_MB ?? 500), 8);
const CLIENTS = scaled(Number(process.env.BENCH_DOWNLOAD_CLIENTS ?? 100), 4);

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

async function writeRandomFile(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  const chunk = randomBytes(8 * 1024 * 1024);
  for (let written = 0; written < bytes; written += chunk.length) {
    if (!out.write(chunk.subarray(0, Math.min(chunk.length, bytes - written)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Runs one curl per client at once; resolves with the wall time and the bytes each received. */
async function curlAll(
  urls: Array<{ url: string; headers: string[] }>,
): Promise<{ seconds: number; bytes: number[] }> {
  const started = process.hrtime.bigint();
  const bytes = await Promise.all(
    urls.map(
      ({ url, headers }) =>
        new Promise<number>((resolve, reject) => {
          const args = [
            '-sS',
            '-o',
            '/dev/null',
            '-w',
            '%{size_download} %{http_code}',
            ...headers.flatMap((h) => ['-H', h]),
            url,
          ];
          const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          child.stdout.on('data', (c: Buffer) => {
            out += c.toString();
          });
          child.on('close', (code) => {
            const [size, status] = out.trim().split(' ');
            if (code !== 0 || (status !== '200' && status !== '206'))
              reject(new Error(`curl ${url}: exit ${code}, ${out}`));
            else resolve(Number(size));
          });
        }),
    ),
  );
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, bytes };
}

/** nginx serving `root` directly or, with `upstream`, in front of FleetD sending the files FleetD names. */
function startNginx(root: string, dir: string, upstream?: string): { url: string; stop(): void } {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `user root; daemon on; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/logs/error.log;
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on; client_body_temp_path ${dir}/tmp;
  server { listen 127.0.0.1:${port}; root ${root};
    ${upstream ? `location /_fleetd_blobs/ { internal; alias ${root}/; } location / { proxy_pass ${upstream}; }` : 'location / { }'} } }
`,
  );
  const started = spawnSync('nginx', ['-c', conf, '-p', dir], { encoding: 'utf8' });
  if (started.status !== 0)
    throw new Error(`nginx did not start (apt-get install nginx-light): ${started.stderr}`);
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => spawnSync('nginx', ['-c', conf, '-p', dir, '-s', 'stop']),
  };
}

export async function runDownload(): Promise<BenchResult> {
  if (spawnSync('nginx', ['-v']).error)
    throw new Error('nginx is not installed: apt-get install nginx-light');
  const tmp = tempDir('fleetd-bench-download-');
  try {
    const size = SIZE_MB * 1024 * 1024;
    const file = join(tmp.path, 'artifact.bin');
    log(`writing a ${SIZE_MB} MB artifact`);
    await writeRandomFile(file, size);

    const now = Date.now();
    const ctx = { now, thresholds: DEFAULT_THRESHOLDS };
    const store = await openSqliteStore(join(tmp.path, 'fleetd.db'));
    const blobs = new FsBlobStore(tmp.path);
    const blob = await blobs.put(createReadStream(file));
    const keyring = await Keyring.open({ dataDir: tmp.path, serverSigning: true, trustedKeyFiles: [] });
    const manifest = canonicalManifest({
      name: 'bench',
      version: '1.0.0',
      type: 'firmware',
      hardware: ['hw'],
      ...blob,
      created: now,
    });
    const signed = keyring.sign(manifest);
    await store.releases.create(
      {
        id: 'rel_bench',
        name: 'bench',
        version: '1.0.0',
        type: 'firmware',
        hardware: ['hw'],
        size: blob.size,
        sha256: blob.sha256,
        manifest,
        ...signed,
        allowDowngrade: false,
        createdAt: now,
      },
      'bench',
    );
    const ids = Array.from({ length: CLIENTS }, (_, i) => `dl-${i}`);
    await store.importDevices(
      ids.map((id) => ({ id, hardwareType: 'hw', firmwareVersion: '0.9.0' })),
      ctx,
      'bench',
    );
    const credentials = ids.map(deviceCredential);
    for (const [i, id] of ids.entries()) {
      await store.setCredential(id, hashSecret(splitDeviceCredential(credentials[i]!)!.secret), ctx, 'bench');
    }
    await store.updates.assign(ids, 'rel_bench', { action: 'install' }, ctx, 'bench');
    await store.close();

    const server = await spawnFleetd(tmp.path);
    let fleetd: { seconds: number; bytes: number[] };
    let idle: number;
    let peak = 0;
    try {
      await new Promise((r) => setTimeout(r, 1000));
      idle = rssBytes(server.pid);
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssBytes(server.pid));
      }, 100);
      log(`fleetd: ${CLIENTS} devices download ${SIZE_MB} MB at once`);
      fleetd = await curlAll(
        ids.map((_, i) => ({
          url: `${server.url}/api/device/v1/artifacts/${blob.sha256}`,
          headers: [`Authorization: Bearer ${credentials[i]}`],
        })),
      ).finally(() => clearInterval(sampler));
    } finally {
      await server.stop();
    }

    const nginx = startNginx(join(tmp.path, 'blobs'), join(tmp.path, 'nginx'));
    let baseline: { seconds: number; bytes: number[] };
    try {
      log(`nginx: ${CLIENTS} clients download the same file at once`);
      baseline = await curlAll(
        ids.map(() => ({
          url: `${nginx.url}/sha256/${blob.sha256.slice(0, 2)}/${blob.sha256}`,
          headers: [],
        })),
      );
    } finally {
      nginx.stop();
    }

    const offloaded = await spawnFleetd(tmp.path, ['--artifact-offload', '/_fleetd_blobs']);
    let front: { seconds: number; bytes: number[] };
    try {
      const proxy = startNginx(join(tmp.path, 'blobs'), join(tmp.path, 'nginx-front'), offloaded.url);
      try {
        log(`nginx in front of fleetd (X-Accel-Redirect): ${CLIENTS} devices download at once`);
        front = await curlAll(
          ids.map((_, i) => ({
            url: `${proxy.url}/api/device/v1/artifacts/${blob.sha256}`,
            headers: [`Authorization: Bearer ${credentials[i]}`],
          })),
        );
      } finally {
        proxy.stop();
      }
    } finally {
      await offloaded.stop();
    }

    const complete = (r: { bytes: number[] }) => r.bytes.every((b) => b === size);
    const mbps = (r: { seconds: number; bytes: number[] }) =>
      r.bytes.reduce((a, b) => a + b, 0) / 2 ** 20 / r.seconds;
    const ratio = mbps(fleetd) / mbps(baseline);
    const growth = (peak - idle) / 2 ** 20;
    const fmtMb = (n: number) => `${fmtInt(n)} MB/s`;
    return {
      rows: [
        {
          name: 'download (throughput)',
          figure: `${fmtMb(mbps(fleetd))} aggregate, ${CLIENTS} × ${SIZE_MB} MB`,
          baseline: `nginx ${fmtMb(mbps(baseline))}`,
          ratio: ratio.toFixed(2),
          target: 'ratio ≥ 0.8, every download complete',
          pass: ratio >= 0.8 && complete(fleetd) && complete(baseline),
        },
        {
          name: 'download (nginx in front, X-Accel-Redirect)',
          figure: `${fmtMb(mbps(front))} aggregate, ${CLIENTS} × ${SIZE_MB} MB, authorised by fleetd`,
          baseline: `nginx ${fmtMb(mbps(baseline))}`,
          ratio: (mbps(front) / mbps(baseline)).toFixed(2),
          target: 'ratio ≥ 0.8, every download complete',
          pass: mbps(front) / mbps(baseline) >= 0.8 && complete(front),
        },
        {
          name: 'download (server memory)',
          figure: `RSS peak ${fmtInt(peak / 2 ** 20)} MB, idle ${fmtInt(idle / 2 ** 20)} MB (+${fmtInt(growth)} MB)`,
          baseline: 'idle RSS of the same server',
          ratio: '—',
          target: 'peak within 100 MB of idle',
          pass: growth <= 100,
        },
      ],
      details: [
        `${CLIENTS} devices, each with its own credential and an update assigned, download a ${SIZE_MB} MB artifact at once through \`GET /api/device/v1/artifacts/:sha256\` (one curl process each, to /dev/null); then nginx ${spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '')} (1 worker, sendfile on) serves the same blob file to ${CLIENTS} curl processes.`,
        `- fleetd: ${fleetd.seconds.toFixed(1)} s, ${fmtMb(mbps(fleetd))}; complete downloads ${fleetd.bytes.filter((b) => b === size).length}/${CLIENTS}`,
        `- nginx in front of fleetd (\`--artifact-offload /_fleetd_blobs\`: fleetd authorises each device, nginx sends the file): ${front.seconds.toFixed(1)} s, ${fmtMb(mbps(front))}; complete downloads ${front.bytes.filter((b) => b === size).length}/${CLIENTS}`,
        `- nginx: ${baseline.seconds.toFixed(1)} s, ${fmtMb(mbps(baseline))}; complete downloads ${baseline.bytes.filter((b) => b === size).length}/${CLIENTS}`,
        `- fleetd RSS (sampled every 100 ms): idle ${fmtInt(idle / 2 ** 20)} MB, peak ${fmtInt(peak / 2 ** 20)} MB`,
        `- Machine: ${machine()}`,
      ],
    };
  } finally {
    tmp.remove();
  }
}
