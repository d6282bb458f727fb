/**
 * Many real agents (src/agent) in one process against a live server: `fleetd sim agents`. Each keeps its
 * state in memory (agent/memory-state.ts), so thousands fit in one process; each heartbeats on its own
 * jittered schedule, over MQTT when a broker is given (HTTP as fallback, as the agent does) and takes the
 * updates assigned to it. Unlike `fleetd sim run`, time is real: this is load, not a rehearsal.
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, type AgentObserver } from '../agent/agent.js';
import type { Logger } from '../agent/log.js';
import type { SendOutcome } from '../agent/outbox.js';
import { heartbeatDelayMs, seededRandom } from '../agent/schedule.js';

export interface LiveAgentsOptions {
  count: number;
  server: string;
  mqtt?: string;
  enrollToken: string;
  /** PEM or base64: the release-signing key the agents trust. */
  publicKey: string;
  idPrefix: string;
  hardwareType: string;
  firmwareVersion?: string;
  /** Heartbeat at most this often (seconds); undefined: as the server asks. */
  heartbeatIntervalSec?: number;
  /** Agents start spread evenly over this time, so enrolment and first connections do not all come at once. */
  rampMs: number;
}

export interface LiveAgentsCounts {
  agents: number;
  started: number;
  /** Agents whose last heartbeat was acknowledged. */
  connected: number;
  heartbeatsSent: number;
  heartbeatsAcknowledged: number;
  heartbeatsFailed: number;
  /** Of the acknowledged heartbeats, those answered over HTTP (all of them without MQTT; with it, the first and fallbacks). */
  heartbeatsOverHttp: number;
  reportsSent: number;
  reportsAccepted: number;
  /** Reports the server did not answer (to be retried) or refused for good. */
  reportsFailed: number;
  /** Agents that stopped on an error only an operator can fix. */
  agentsStopped: number;
  /** Warnings the agents logged (e.g. an MQTT reply that timed out and was asked over HTTP). */
  warnings: number;
  rssBytes: number;
}

/** Runs the agents until `signal` aborts, then waits for every step in flight to finish. */
export class LiveAgents {
  private readonly counts: Omit<LiveAgentsCounts, 'connected' | 'rssBytes' | 'agents'> = {
    started: 0,
    heartbeatsSent: 0,
    heartbeatsAcknowledged: 0,
    heartbeatsFailed: 0,
    heartbeatsOverHttp: 0,
    reportsSent: 0,
    reportsAccepted: 0,
    reportsFailed: 0,
    agentsStopped: 0,
    warnings: 0,
  };
  private readonly up: boolean[];
  /** The first few distinct warnings and errors, to say what went wrong without flooding the output. */
  readonly problems = new Map<string, number>();
  private stopping: AbortSignal | undefined;

  constructor(private readonly o: LiveAgentsOptions) {
    this.up = new Array<boolean>(o.count).fill(false);
  }

  snapshot(): LiveAgentsCounts {
    return {
      agents: this.o.count,
      ...this.counts,
      connected: this.up.filter(Boolean).length,
      rssBytes: process.memoryUsage.rss(),
    };
  }

  async run(signal: AbortSignal): Promise<void> {
    setMaxListeners(0, signal); // every agent listens for the stop
    this.stopping = signal;
    const runs: Promise<void>[] = [];
    const step = this.o.count > 0 ? this.o.rampMs / this.o.count : 0;
    const t0 = Date.now();
    for (let i = 0; i < this.o.count && !signal.aborted; i++) {
      // Against the clock, not one timer per agent: timers on a busy loop run late, and the ramp would stretch.
      const wait = t0 + i * step - Date.now();
      if (wait > 0) await delay(wait, undefined, { signal }).catch(() => undefined);
      if (!signal.aborted) runs.push(this.runOne(i, signal));
    }
    await Promise.all(runs);
  }

  private async runOne(index: number, signal: AbortSignal): Promise<void> {
    const id = `${this.o.idPrefix}${index}`;
    const random = seededRandom(index + 1);
    const interval = this.o.heartbeatIntervalSec;
    const agent = new Agent({
      server: this.o.server,
      ...(this.o.mqtt !== undefined ? { mqtt: this.o.mqtt } : {}),
      deviceId: id,
      hardwareType: this.o.hardwareType,
      stateDir: `memory:${id}`,
      memoryState: true,
      enrollToken: this.o.enrollToken,
      publicKey: this.o.publicKey,
      ...(this.o.firmwareVersion !== undefined ? { firmwareVersion: this.o.firmwareVersion } : {}),
      random,
      fetch: this.countingFetch,
      log: this.logger(),
      observer: this.observer(index),
      // A shorter interval than the server's caps the wait; the agent's own waits (retries, holds) still apply.
      sleep: (ms, s) =>
        delay(interval === undefined ? ms : Math.min(ms, heartbeatDelayMs(interval, random)), undefined, {
          signal: s,
        }),
    });
    this.counts.started++;
    try {
      await agent.run(signal);
    } catch (e) {
      this.counts.agentsStopped++;
      this.note(`agent stopped: ${(e as Error).message}`);
    }
    this.up[index] = false;
  }

  /** Counts the heartbeats answered over HTTP, so those over MQTT can be told apart (and checked against the broker). */
  private readonly countingFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (res.status === 200 && String(input).endsWith('/heartbeat')) this.counts.heartbeatsOverHttp++;
    return res;
  };

  private observer(index: number): AgentObserver {
    return {
      heartbeat: (outcome) => {
        this.counts.heartbeatsSent++;
        if (outcome.ok) {
          this.counts.heartbeatsAcknowledged++;
        } else {
          this.counts.heartbeatsFailed++;
          this.note(`heartbeat failed: ${outcome.error}`);
        }
        this.up[index] = outcome.ok;
      },
      report: (outcome: SendOutcome) => {
        this.counts.reportsSent++;
        if (outcome.kind === 'answered') this.counts.reportsAccepted++;
        else {
          this.counts.reportsFailed++;
          this.note(`report ${outcome.kind}: ${outcome.reason}`);
        }
      },
    };
  }

  private logger(): Logger {
    return {
      info: () => undefined,
      warn: (message) => {
        if (this.stopping?.aborted) return; // e.g. "MQTT connection lost" as each agent closes it
        this.counts.warnings++;
        this.note(message);
      },
    };
  }

  private note(message: string): void {
    // Messages carry ids and counts; keep them as they are, but only the first 20 kinds.
    if (this.problems.has(message) || this.problems.size < 20)
      this.problems.set(message, (this.problems.get(message) ?? 0) + 1);
  }
}

export function formatCounts(c: LiveAgentsCounts, elapsedMs: number): string {
  return [
    `${(elapsedMs / 1000).toFixed(0)}s`,
    `agents ${c.connected}/${c.agents} connected (${c.started} started, ${c.agentsStopped} stopped)`,
    `heartbeats ${c.heartbeatsSent} sent, ${c.heartbeatsAcknowledged} acknowledged (${c.heartbeatsOverHttp} over HTTP), ${c.heartbeatsFailed} failed`,
    `reports ${c.reportsSent} sent, ${c.reportsAccepted} answered, ${c.reportsFailed} not`,
    `warnings ${c.warnings}`,
    `rss ${Math.round(c.rssBytes / 1048576)} MiB`,
  ].join(' | ');
}
