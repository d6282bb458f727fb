/** Real `fleetd` processes for end-to-end tests: the built binary, spawned like a user would run it. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FLEETD = join(import.meta.dirname, '../../dist/src/cli/main.js');

export function tempDir(prefix = 'fleetd-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Sends the signal and resolves once the process has exited (at once if it already has). */
function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    child.kill(signal);
  });
}

export interface ServerProcess {
  url: string;
  /** The embedded MQTT broker's URL, when the server runs one. */
  mqttUrl: string | undefined;
  /** The embedded broker's TLS listener, when the server has TLS. */
  mqttsUrl: string | undefined;
  child: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `fleetd server --port 0` and resolves once it prints the URL it listens on. Its embedded MQTT
 * broker takes any free port too (`--mqtt URL` or `--no-mqtt` in extraArgs override that).
 */
export function spawnServer(dataDir: string, extraArgs: string[] = []): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [FLEETD, 'server', '--port', '0', '--mqtt-port', '0', '--data', dataDir, ...extraArgs],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (https?:\/\/[^\s]+)/.exec(output);
      if (match) {
        resolve({
          url: match[1]!,
          mqttUrl: /MQTT: embedded broker listening on (mqtt:\/\/\S+)/.exec(output)?.[1],
          mqttsUrl: /MQTT: embedded broker listening (?:with TLS )?on (mqtts:\/\/\S+)/.exec(output)?.[1],
          child,
          output: () => output,
          kill: (signal = 'SIGTERM') => stop(child, signal),
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) =>
      reject(new Error(`server exited with ${code} before listening:\n${output}`)),
    );
  });
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [FLEETD, ...args], {
    encoding: 'utf8',
    env: { ...process.env, FLEETD_SERVER: '', FLEETD_TOKEN: '', ...env },
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export interface AgentProcess {
  child: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a real `fleetd agent` process. */
export function spawnAgent(args: string[]): AgentProcess {
  const child = spawn(process.execPath, [FLEETD, 'agent', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    output += c.toString();
  });
  return {
    child,
    output: () => output,
    kill: (signal = 'SIGTERM') => stop(child, signal),
  };
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
