/** Runs an updater's command line (no shell parsing of its arguments) under the install timeout. */
import { type CommandResult, describeFailure, runShell } from '../run-command.js';
import type { Verdict } from '../verify.js';
import type { InstallContext } from './handler.js';

export async function runTool(
  command: string,
  args: string[],
  ctx: Pick<InstallContext, 'timeoutMs' | 'signal' | 'slotDir'>,
): Promise<CommandResult> {
  // `exec "$@"`: the command and its arguments reach exec as they are, whatever characters they hold
  return runShell(['-c', 'exec "$@"', 'sh', command, ...args], {
    cwd: ctx.slotDir,
    timeoutMs: ctx.timeoutMs,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
}

/** The tool's outcome as a verdict whose reason ends with what the tool said went wrong. */
export async function runStep(
  what: string,
  command: string,
  args: string[],
  ctx: Pick<InstallContext, 'timeoutMs' | 'signal' | 'slotDir'>,
): Promise<Verdict> {
  return stepVerdict(what, await runTool(command, args, ctx), ctx.timeoutMs);
}

/** A tool's finished run as a verdict: exit 0 is success, anything else fails saying why. */
export function stepVerdict(what: string, result: CommandResult, timeoutMs: number): Verdict {
  const failure = describeFailure(result, timeoutMs);
  if (!failure) return { ok: true, value: undefined };
  const output = 'output' in result ? lastLine(result.output) : '';
  return { ok: false, reason: `${what} failed: ${failure}${output ? ` (${output})` : ''}` };
}

/** The last line saying "error" (tools print their summary after it), else the last line. */
function lastLine(output: string): string {
  const lines = output
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const errors = lines.filter((l) => /\berror\b/i.test(l));
  return (errors[errors.length - 1] ?? lines[lines.length - 1] ?? '').slice(0, 300);
}
