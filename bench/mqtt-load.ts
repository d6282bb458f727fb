/**
 * `node dist/bench/mqtt-load.js --agents 10000 --minutes 10`: the MQTT load run of docs/operations.md.
 * Two `fleetd server` replicas on one PostgreSQL schema (made fresh, dropped after) bridged over one external
 * broker (shared subscriptions), and `fleetd sim agents` in two processes (half the agents enrolled through
 * each replica) heartbeating over MQTT. Every 30 s it samples the RSS of the four processes; at the end it
 * accounts for every heartbeat: those the agents saw acknowledged, those published on the broker, and the
 * heartbeat replies the replicas published (counted by a subscriber of its own on the broker).
 *
 * Options: --agents N (1000), --minutes M (2), --interval D (server heartbeat interval, 60s), --ramp D (start
 * the agents over this, default a tenth of the run up to 60s), --db URL (postgres://postgres@127.0.0.1:5432/test),
 * --broker URL (mqtt://127.0.0.1:1883). Loads only 127.0.0.1: it refuses other hosts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import pg from 'pg';

const FLEETD = join(import.meta.dirname, '../src/cli/main.js');
const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000' },
    minutes: { type: 'string', default: '2' },
    interval: { type: 'string', default: '60s' },
    ramp: { type: 'string' },
    db: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
    broker: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
  },
});
const agents = Number(values.agents);
const minutes = Number(values.minutes);
const ramp = values.ramp ?? `${Math.min(60, Math.round(minutes * 6))}s`;
for (const url of [values.db, values.broker]) {
  if (new URL(url).hostname !== '127.0.0.1') throw new Error(`${url}: this load goes to 127.0.0.1 only`);
}

const started = Date.now();
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const stamp = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s`;
const say = (line: string) => process.stdout.write(`${stamp()} ${line}\n`);

async function sql(statement: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: values.db });
  await client.connect();
  try {
    return await client.query(statement);
  } finally {
    await client.end();
  }
}

interface Proc {
  name: string;
  child: ChildProcess;
  output: string;
}

const procs: Proc[] = [];
function start(name: string, args: string[]): Proc {
  const child = spawn(process.execPath, [FLEETD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { name, child, output: '' };
  child.stdout?.on('data', (c: Buffer) => {
    p.output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    p.output += c.toString();
  });
  procs.push(p);
  return p;
}

function exited(p: Proc): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve(p.child.exitCode);
  return new Promise((resolve) => p.child.once('exit', (code) => resolve(code)));
}

async function listening(p: Proc): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const match = /listening on (http:\/\/\S+)/.exec(p.output);
    if (match) return match[1]!;
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited:\n${p.output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${p.name} did not start:\n${p.output}`);
}

function rssMiB(p: Proc): number | undefined {
  try {
    const status = readFileSync(`/proc/${p.child.pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return Math.round(kb / 1024);
  } catch {
    return undefined; // exited, or no /proc
  }
}

const schema = `fleetd_load_${randomBytes(5).toString('hex')}`;
await sql(`create schema "${schema}"`);
const db = new URL(values.db);
db.searchParams.set('options', `-c search_path=${schema}`);
const data = mkdtempSync(join(tmpdir(), 'fleetd-mqtt-load-'));

// The broker's own view: heartbeats published by devices and heartbeat replies published by the replicas.
const monitor = await mqtt.connectAsync(values.broker, {
  clientId: `fleetd-load-monitor-${randomBytes(4).toString('hex')}`,
});
const seen = { heartbeats: 0, replies: 0, errorReplies: 0, reports: 0 };
await monitor.subscribeAsync(['fleetd/v1/devices/+/heartbeat', 'fleetd/v1/devices/+/inbox'], { qos: 0 });
monitor.on('message', (topic, payload) => {
  if (topic.endsWith('/heartbeat')) {
    seen.heartbeats++;
    return;
  }
  const type = (JSON.parse(payload.toString()) as { type?: string }).type;
  if (type === 'heartbeat') seen.replies++;
  else if (type === 'report') seen.reports++;
  else if (type === 'error') seen.errorReplies++;
});

let failed = false;
try {
  const serverArgs = (port: number) => [
    ...['server', '--port', String(port), '--data', data, '--db', db.toString()],
    ...['--mqtt', values.broker, '--heartbeat-interval', values.interval, '--log-level', 'warn'],
  ];
  // One after the other: the first creates the schema, the signing key and the admin token.
  const servers = [start('server-1', serverArgs(0))];
  const urls = [await listening(servers[0]!)];
  servers.push(start('server-2', serverArgs(0)));
  urls.push(await listening(servers[1]!));
  say(`replicas ${urls.join(' ')} on schema ${schema}, broker ${values.broker}`);

  const half = [Math.ceil(agents / 2), Math.floor(agents / 2)];
  const sims = urls.map((url, i) =>
    start(`agents-${i + 1}`, [
      ...['--server', url, '--data', data, 'sim', 'agents', '--count', String(half[i])],
      ...['--id-prefix', `load${i + 1}-`, '--mqtt', values.broker, '--firmware', '1.0.0'],
      ...['--duration', `${minutes}m`, '--ramp', ramp, '--summary-interval', '30s'],
    ]),
  );
  const all = [...servers, ...sims];
  const samples: string[] = [];
  const sample = () => {
    const line = all.map((p) => `${p.name} ${rssMiB(p) ?? '-'} MiB`).join(', ');
    samples.push(`${stamp()} ${line}`);
    say(`rss: ${line}; broker saw ${seen.heartbeats} heartbeats, ${seen.replies} replies`);
  };
  sample();
  const sampler = setInterval(sample, 30_000);
  const codes = await Promise.all(sims.map(exited));
  clearInterval(sampler);
  sample();
  await new Promise((r) => setTimeout(r, 2000)); // replies still on their way to the monitor

  // Accounting.
  const finals = sims.map((p) => /final: .*/.exec(p.output)?.[0] ?? `${p.name}: no final line\n${p.output}`);
  const acked = sims.map((p) =>
    Number(/(\d+) acknowledged/.exec(/final: .*/.exec(p.output)?.[0] ?? '')?.[1]),
  );
  const overHttp = sims.map((p) =>
    Number(/\((\d+) over HTTP\)/.exec(/final: .*/.exec(p.output)?.[0] ?? '')?.[1]),
  );
  const sent = sims.map((p) =>
    Number(/heartbeats (\d+) sent/.exec(/final: .*/.exec(p.output)?.[0] ?? '')?.[1]),
  );
  const devices = await sql(
    `select count(*)::int as n, count(last_seen)::int as seen, min(last_seen)::bigint as oldest from "${schema}".devices`,
  );
  const row = devices.rows[0] as { n: number; seen: number; oldest: string | null };
  const serverWarnings = servers.map((p) => p.output.split('\n').filter((l) => /"level":(40|50|60)/.test(l)));
  say('--- result ---');
  for (const p of sims) {
    // The agents' own 30 s counts: when failures happened (ramp, connection storm, steady state).
    for (const l of p.output.split('\n').filter((x) => /^\d+s \| agents/.test(x))) say(`${p.name}: ${l}`);
  }
  for (const f of finals) say(f);
  for (const p of sims) {
    const problems = p.output.split('\n').filter((l) => /^\s+\d+× /.test(l));
    for (const l of problems) say(`${p.name}:${l}`);
  }
  say(
    `agents: ${sum(sent)} heartbeats sent, ${sum(acked)} acknowledged, of which ${sum(overHttp)} over HTTP and ${sum(acked) - sum(overHttp)} over MQTT`,
  );
  say(
    `broker: ${seen.heartbeats} heartbeats published, ${seen.replies} heartbeat replies from the replicas, ${seen.errorReplies} error replies, ${seen.reports} report replies`,
  );
  say(
    `store: ${row.n} devices, ${row.seen} with last_seen, oldest last_seen ${row.oldest === null ? '-' : `${Math.round((Date.now() - Number(row.oldest)) / 1000)} s ago`}`,
  );
  say(`server warnings/errors: ${serverWarnings.map((w) => w.length).join(' + ')}`);
  for (const w of serverWarnings.flat().slice(0, 10)) say(`  ${w.slice(0, 300)}`);
  say(`sim exit codes: ${codes.join(', ')}`);
  say('RSS samples:');
  for (const s of samples) say(`  ${s}`);
  const totalAcked = sum(acked) - sum(overHttp);
  failed =
    sum(sent) !== sum(acked) ||
    codes.some((c) => c !== 0) ||
    row.n !== agents ||
    totalAcked !== seen.replies ||
    seen.heartbeats !== seen.replies ||
    serverWarnings.some((w) => w.length > 0);
  say(failed ? 'FAIL: see above' : 'PASS: every heartbeat acknowledged, published and answered exactly once');
} finally {
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.all(procs.map(exited));
  await monitor.endAsync();
  await sql(`drop schema if exists "${schema}" cascade`);
}
process.exitCode = failed ? 1 : 0;
