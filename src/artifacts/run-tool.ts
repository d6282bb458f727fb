/** Runs a delta tool as a child process on files; its memory is its own, never the server's heap. */
import { spawn } from 'node:child_process';
import type { ToolCommand } from '../core/delta.js';

export type ToolResult = { ok: true } | { ok: false; missing: boolean; reason: string };

const KEEP_OUTPUT = 1024;

export function runTool(cmd: ToolCommand, signal?: AbortSignal): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-KEEP_OUTPUT);
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      resolve({ ok: false, missing: e.code === 'ENOENT', reason: `${cmd.command}: ${e.message}` });
    });
    child.on('close', (code, sig) => {
      if (code === 0) resolve({ ok: true });
      else {
        const how = code === null ? `killed by ${sig}` : `exit ${code}`;
        resolve({ ok: false, missing: false, reason: `${cmd.command} ${how}: ${stderr.trim()}` });
      }
    });
  });
}
