/**
 * `fleetd sim run SCENARIO.yaml`: rehearses rollouts on a simulated fleet against the real server in
 * virtual time (src/sim/, docs/simulator.md). Exits 1 when an invariant check fails.
 * `fleetd sim agents`: many real agents in this process against a live server, in real time (load).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../core/duration.js';
import { isFleetError } from '../core/errors.js';
import { formatCounts, LiveAgents } from '../sim/live-agents.js';
import { formatReport } from '../sim/report.js';
import { buildResult, type SimResult } from '../sim/result.js';
import { parseScenarioText, type Scenario } from '../sim/scenario.js';
import { Simulator } from '../sim/simulator.js';
import { CliError, type Client } from './client.js';
import { type OutputFormat, printJson } from './output.js';

export async function simulate(scenario: Scenario, quiet: boolean): Promise<SimResult> {
  const sim = new Simulator(
    scenario,
    quiet ? {} : { progress: (line) => process.stderr.write(`[sim] ${line}\n`) },
  );
  return buildResult(await sim.run());
}

export function loadScenario(file: string, layer?: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
  try {
    const scenario = parseScenarioText(text, basename(file).replace(/\.ya?ml$/, ''));
    if (layer !== undefined) {
      if (layer !== 'store' && layer !== 'http') throw new CliError('--layer: must be store or http');
      scenario.simulation.layer = layer;
    }
    return scenario;
  } catch (error) {
    if (isFleetError(error)) throw new CliError(`${file}: ${error.message}`);
    throw error;
  }
}

interface AgentsFlags {
  count: string;
  mqtt?: string;
  enrollmentToken?: string;
  idPrefix: string;
  hardware: string;
  firmware?: string;
  publicKey?: string;
  duration: string;
  heartbeatInterval?: string;
  ramp?: string;
  summaryInterval: string;
}

/** Runs the agents for the duration, printing a summary line as it goes; false if a heartbeat went unacknowledged. */
export async function simulateAgents(
  server: string,
  flags: AgentsFlags,
  operator: () => Client,
  write: (line: string) => void,
): Promise<boolean> {
  const count = Number(flags.count);
  if (!Number.isInteger(count) || count < 1)
    throw new CliError('--count: a whole number of agents, 1 or more');
  const durationMs = parseDuration(flags.duration, '--duration');
  const summaryMs = parseDuration(flags.summaryInterval, '--summary-interval');
  // Without the flags, ask the server as an operator: its signing key and a fresh enrolment token.
  let publicKey: string;
  if (flags.publicKey !== undefined) {
    try {
      publicKey = readFileSync(flags.publicKey, 'utf8');
    } catch (error) {
      throw new CliError(`--public-key: ${(error as Error).message}`);
    }
  } else {
    const keys = await operator().request<{ keys: Array<{ public_key: string }> }>('GET', '/api/v1/keys');
    if (!keys.keys[0]) throw new CliError('the server has no signing key: pass --public-key');
    publicKey = keys.keys[0].public_key;
  }
  const enrollToken =
    flags.enrollmentToken ??
    (await operator().request<{ token: string }>('POST', '/api/v1/enrollment-tokens', {})).token;
  const agents = new LiveAgents({
    count,
    server,
    ...(flags.mqtt !== undefined ? { mqtt: flags.mqtt } : {}),
    enrollToken,
    publicKey,
    idPrefix: flags.idPrefix,
    hardwareType: flags.hardware,
    ...(flags.firmware !== undefined ? { firmwareVersion: flags.firmware } : {}),
    ...(flags.heartbeatInterval !== undefined
      ? { heartbeatIntervalSec: parseDuration(flags.heartbeatInterval, '--heartbeat-interval') / 1000 }
      : {}),
    // by default a thousand agents a second at most, and never longer than a tenth of the run
    rampMs: flags.ramp !== undefined ? parseDuration(flags.ramp, '--ramp') : Math.min(count, durationMs / 10),
  });
  const stop = new AbortController();
  const started = Date.now();
  const timer = setTimeout(() => stop.abort(), durationMs);
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ticker = setInterval(() => write(formatCounts(agents.snapshot(), Date.now() - started)), summaryMs);
  try {
    await agents.run(stop.signal);
  } finally {
    clearTimeout(timer);
    clearInterval(ticker);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const end = agents.snapshot();
  write(`final: ${formatCounts(end, Date.now() - started)}`);
  for (const [message, times] of agents.problems) write(`  ${times}× ${message}`);
  return end.heartbeatsSent === end.heartbeatsAcknowledged && end.agentsStopped === 0;
}

export function registerSim(program: Command, ctx: { format(): OutputFormat; client(): Client }): void {
  const sim = program.command('sim').description('simulate a fleet against the real server in virtual time');
  sim
    .command('run <scenario>')
    .description('run a scenario file (fleet, rollouts, actions, faults) and report what happened')
    .option('--layer <layer>', 'where devices enter the server: store (default) or http')
    .option('--quiet', 'no progress lines on stderr')
    .action(async (file: string, flags: { layer?: string; quiet?: boolean }) => {
      const result = await simulate(
        loadScenario(file, flags.layer),
        flags.quiet === true || ctx.format() === 'json',
      );
      if (ctx.format() === 'json') printJson(result);
      else process.stdout.write(`${formatReport(result)}\n`);
      if (!result.pass) process.exitCode = 1;
    });
  sim
    .command('agents')
    .description('run many real agents in this process against a live server (load, in real time)')
    .requiredOption('--count <n>', 'how many agents')
    .option('--mqtt <url>', 'heartbeat and report over this MQTT broker (HTTP as fallback)')
    .option(
      '--enrollment-token <token>',
      'enrolment token (default: a new one, made with the operator token)',
    )
    .option('--id-prefix <prefix>', 'device ids are <prefix>0 … <prefix>N-1', 'sim-')
    .option('--hardware <type>', "the agents' hardware type", 'sim')
    .option('--firmware <version>', 'the version the agents run before any FleetD release')
    .option('--public-key <file>', "the release-signing key to trust (default: the server's, as an operator)")
    .option('--duration <duration>', 'how long to run', '10m')
    .option('--heartbeat-interval <duration>', 'heartbeat at most this often (default: as the server asks)')
    .option(
      '--ramp <duration>',
      'start the agents spread over this time (default: 1 ms per agent, up to a tenth of the run)',
    )
    .option('--summary-interval <duration>', 'how often to print the counts', '10s')
    .action(async (flags: AgentsFlags) => {
      const server = program.opts<{ server?: string }>().server ?? process.env.FLEETD_SERVER;
      if (!server) throw new CliError('--server <url> is required: the FleetD server the agents talk to');
      const ok = await simulateAgents(server, flags, ctx.client, (line) => process.stdout.write(`${line}\n`));
      if (!ok) process.exitCode = 1;
    });
}
