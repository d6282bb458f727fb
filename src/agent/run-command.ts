/** Runs a shell command with a deadline; on timeout the whole process group is killed, not just `sh`. */
import { spawn } from 'node:child_process';

export type CommandResult =
  | { kind: 'exit'; code: number; output: string }
  | { kind: 'signal'; signal: string; output: string }
  | { kind: 'timeout'; output: string }
  | { kind: 'error'; message: string };

export interface RunOptions {
  cwd?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** How much of the output's tail to keep, in characters (default 2048). */
  keepOutput?: number;
  /** Added to the environment of the command. */
  env?: Record<string, string>;
}

const KEEP_OUTPUT = 2048;

export function runShell(args: string[], options: RunOptions): Promise<CommandResult> {
  return new Promise((resolve) => {
    // detached: the child leads its own process group, so a timeout also kills what the script started
    const child = spawn('sh', args, {
      cwd: options.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    });
    const keepOutput = options.keepOutput ?? KEEP_OUTPUT;
    let output = '';
    let timedOut = false;
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-keepOutput);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const kill = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs);
    options.signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ kind: 'error', message: e.message });
    });
    // 'exit', not 'close': a daemon the script leaves running may hold stdout open for ever
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      options.signal?.removeEventListener('abort', kill);
      if (timedOut) resolve({ kind: 'timeout', output });
      else if (code !== null) resolve({ kind: 'exit', code, output });
      else resolve({ kind: 'signal', signal: signal ?? 'unknown', output });
    });
  });
}

/** `exit 1`, `killed by SIGKILL`, `timed out after 5s`: the tail of a failure reason. */
export function describeFailure(result: CommandResult, timeoutMs: number): string | undefined {
  switch (result.kind) {
    case 'exit':
      return result.code === 0 ? undefined : `exit ${result.code}`;
    case 'signal':
      return `killed by ${result.signal}`;
    case 'timeout':
      return `timed out after ${formatMs(timeoutMs)}`;
    case 'error':
      return result.message;
  }
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
