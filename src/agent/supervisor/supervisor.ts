/**
 * Supervised applications: the agent starts each configured command, restarts it when it exits on its own
 * (after the crash policy's backoff), stops it on request, and writes its output to rotated logs. Driven by
 * `poll()` from the agent's loop and by the injected clock, so tests move time instead of waiting.
 * `health()` fails while an application is in a crash loop: used as (part of) the health check, a release
 * that makes its application crash-loop is rolled back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../core/clock.js';
import type { Verdict } from '../verify.js';
import { afterExit, type CrashPolicy, DEFAULT_CRASH_POLICY } from './crash-policy.js';
import { RotatingLog } from './rotating-log.js';

export interface AppSpec {
  name: string;
  /** Run with `sh -c`. */
  command: string;
  cwd?: string;
}

export type AppState = 'running' | 'backoff' | 'crash-loop' | 'stopped';

export interface AppStatus {
  name: string;
  state: AppState;
  restarts: number;
  /** When a restart is due (ms since the epoch), in backoff. */
  restartAt?: number;
  lastExit?: string;
}

interface App {
  spec: AppSpec;
  child: ChildProcess | undefined;
  state: AppState;
  crashes: number[];
  restarts: number;
  restartAt: number | undefined;
  lastExit?: string;
  log: RotatingLog;
  /** Set while we stop it ourselves: that exit is not a crash. */
  stopping: boolean;
}

export class Supervisor {
  private readonly apps = new Map<string, App>();

  constructor(
    private readonly logDir: string,
    private readonly clock: Clock,
    private readonly policy: CrashPolicy = DEFAULT_CRASH_POLICY,
    private readonly onCrashLoop: (status: AppStatus) => void = () => {},
  ) {
    mkdirSync(logDir, { recursive: true });
  }

  start(spec: AppSpec): void {
    const existing = this.apps.get(spec.name);
    if (existing?.state === 'running') return;
    const app: App = existing ?? {
      spec,
      child: undefined,
      state: 'stopped',
      crashes: [],
      restarts: 0,
      restartAt: undefined,
      log: new RotatingLog(join(this.logDir, `${spec.name}.log`)),
      stopping: false,
    };
    app.spec = spec;
    app.crashes = [];
    this.apps.set(spec.name, app);
    this.launch(app);
  }

  /** SIGTERM to the application's process group; resolves once it exited. */
  async stop(name: string): Promise<void> {
    const app = this.apps.get(name);
    if (!app) return;
    app.restartAt = undefined;
    const child = app.child;
    app.state = 'stopped';
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    app.stopping = true;
    await new Promise<void>((done) => {
      child.once('exit', () => done());
      try {
        process.kill(-(child.pid ?? 0), 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
    });
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.apps.keys()].map((name) => this.stop(name)));
  }

  async restart(name: string): Promise<void> {
    const app = this.apps.get(name);
    if (!app) return;
    await this.stop(name);
    this.start(app.spec);
  }

  /** Starts the applications whose backoff is over. */
  poll(): void {
    const now = this.clock.now();
    for (const app of this.apps.values()) {
      if (app.state === 'backoff' && app.restartAt !== undefined && now >= app.restartAt) {
        app.restarts += 1;
        this.launch(app);
      }
    }
  }

  status(): AppStatus[] {
    return [...this.apps.values()].map((a) => ({
      name: a.spec.name,
      state: a.state,
      restarts: a.restarts,
      ...(a.restartAt !== undefined ? { restartAt: a.restartAt } : {}),
      ...(a.lastExit !== undefined ? { lastExit: a.lastExit } : {}),
    }));
  }

  /** Fails naming each application in a crash loop. */
  async health(): Promise<Verdict> {
    const looping = this.status().filter((s) => s.state === 'crash-loop');
    if (looping.length === 0) return { ok: true, value: undefined };
    return {
      ok: false,
      reason: `crash loop: ${looping.map((s) => `${s.name} (${s.lastExit ?? 'exited'})`).join(', ')}`,
    };
  }

  private launch(app: App): void {
    app.stopping = false;
    app.restartAt = undefined;
    const child = spawn('sh', ['-c', app.spec.command], {
      cwd: app.spec.cwd,
      detached: true, // its own process group: stop reaches what it started
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    app.child = child;
    app.state = 'running';
    child.stdout?.on('data', (chunk: Buffer) => app.log.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => app.log.write(chunk));
    child.on('error', (e) => this.exited(app, child, `failed to start: ${e.message}`));
    child.on('exit', (code, signal) =>
      this.exited(app, child, code !== null ? `exit ${code}` : `killed by ${signal ?? 'unknown'}`),
    );
  }

  private exited(app: App, child: ChildProcess, how: string): void {
    if (app.child !== child) return; // an earlier run's late event
    app.child = undefined;
    app.lastExit = how;
    if (app.stopping || app.state === 'stopped') {
      app.state = 'stopped';
      return;
    }
    const { decision, crashes } = afterExit(app.crashes, this.clock.now(), this.policy);
    app.crashes = crashes;
    if (decision.action === 'crash-loop') {
      app.state = 'crash-loop';
      this.onCrashLoop(this.status().find((s) => s.name === app.spec.name)!);
      return;
    }
    app.state = 'backoff';
    app.restartAt = this.clock.now() + decision.delayMs;
  }
}
