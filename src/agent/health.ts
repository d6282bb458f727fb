/**
 * Is the release just switched to working? One probe is retried until it passes or the deadline
 * passes (a service may need a while to come up); the failure reason is the last probe's.
 */
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { type Clock, systemClock } from '../core/clock.js';
import type { HttpFetch } from './downloader.js';
import { describeFailure, runShell } from './run-command.js';
import type { Verdict } from './verify.js';

export type HealthCheck =
  | { kind: 'command'; command: string }
  | { kind: 'http'; url: string }
  | { kind: 'tcp'; host: string; port: number };

export interface HealthOptions {
  /** Total time allowed for the release to become healthy. */
  deadlineMs: number;
  /** Pause between probes. */
  intervalMs?: number;
  /** Longest a single probe may take (capped by what is left of the deadline). */
  probeTimeoutMs?: number;
  clock?: Clock;
  sleep?: (ms: number) => Promise<void>;
  fetch?: HttpFetch;
  cwd?: string;
}

export async function checkHealth(check: HealthCheck, options: HealthOptions): Promise<Verdict> {
  const clock = options.clock ?? systemClock;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const interval = options.intervalMs ?? 2000;
  const started = clock.now();
  for (;;) {
    const left = options.deadlineMs - (clock.now() - started);
    const failure = await probe(
      check,
      Math.max(1, Math.min(options.probeTimeoutMs ?? 10_000, left)),
      options,
    );
    if (failure === undefined) return { ok: true, value: undefined };
    if (clock.now() - started + interval >= options.deadlineMs) {
      return { ok: false, reason: `health check failed: ${failure}` };
    }
    await sleep(interval);
  }
}

/** One probe: undefined when healthy, else why not. */
export async function probe(
  check: HealthCheck,
  timeoutMs: number,
  options: { fetch?: HttpFetch; cwd?: string } = {},
): Promise<string | undefined> {
  switch (check.kind) {
    case 'command': {
      const result = await runShell(['-c', check.command], {
        timeoutMs,
        ...(options.cwd ? { cwd: options.cwd } : {}),
      });
      return describeFailure(result, timeoutMs);
    }
    case 'http':
      try {
        const res = await (options.fetch ?? fetch)(check.url, { signal: AbortSignal.timeout(timeoutMs) });
        await res.body?.cancel();
        return res.ok ? undefined : `HTTP ${res.status}`;
      } catch (e) {
        return `GET ${check.url}: ${errorText(e)}`;
      }
    case 'tcp':
      return tcpProbe(check.host, check.port, timeoutMs);
  }
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (failure: string | undefined) => {
      socket.destroy();
      resolve(failure);
    };
    socket.setTimeout(timeoutMs, () => done(`connect ${host}:${port} timed out`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (e: NodeJS.ErrnoException) =>
      done(`connect ${host}:${port}: ${e.code ?? e.message}`),
    );
  });
}

function errorText(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message;
}

/** The CLI's `--health-cmd CMD | --health-url URL | --health-tcp HOST:PORT` (at most one). */
export function healthCheckFromFlags(flags: {
  healthCmd?: string | undefined;
  healthUrl?: string | undefined;
  healthTcp?: string | undefined;
}): HealthCheck | undefined {
  const given = [flags.healthCmd, flags.healthUrl, flags.healthTcp].filter((f) => f !== undefined);
  if (given.length > 1) throw new Error('give at most one of --health-cmd, --health-url, --health-tcp');
  if (flags.healthCmd !== undefined) return { kind: 'command', command: flags.healthCmd };
  if (flags.healthUrl !== undefined) {
    const url = new URL(flags.healthUrl); // throws on a malformed URL, at startup rather than mid-update
    return { kind: 'http', url: url.toString() };
  }
  if (flags.healthTcp !== undefined) {
    const m = /^(.+):(\d{1,5})$/.exec(flags.healthTcp);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535)
      throw new Error(`--health-tcp wants HOST:PORT, got ${flags.healthTcp}`);
    return { kind: 'tcp', host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  }
  return undefined;
}
