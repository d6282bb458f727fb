/**
 * One fuzz case, judged: the answer is below 500 and arrived, every error answer has FleetD's shape, /healthz
 * answered meanwhile, and the server still works afterwards (a poisoned server is reset so that later cases
 * mean something). Timings are recorded, never judged here: a shared CI machine is no place for them.
 */
import { appendFileSync } from 'node:fs';
import type { FuzzRequest } from './fuzz-generators.js';
import type { FuzzTarget } from './fuzz-target.js';

export type FuzzProperty = 'status' | 'shape' | 'crash' | 'healthz' | 'poisoned';

export interface CaseFailure {
  op: string;
  property: FuzzProperty;
  /** The case's kind and what was broken (the generator's label). */
  label: string;
  method: string;
  url: string;
  /** The request body, abridged. */
  body: string;
  status: number;
  /** The answer (or, for `poisoned`, what no longer worked), abridged. */
  answer: string;
}

export interface CaseResult {
  failures: CaseFailure[];
  status: number;
  ms: number;
  healthzMs: number;
}

const abridge = (text: string, max = 300) =>
  text.length > max ? `${text.slice(0, max)}…(${text.length})` : text;

export function describeBody(body: string | Buffer | undefined): string {
  if (body === undefined) return '';
  const text = typeof body === 'string' ? body : body.toString('utf8');
  return abridge(JSON.stringify(text).slice(1, -1), 200);
}

/** Whether `body` is `{"error":{"code":"…","message":"…"}}` (details allowed). */
export function hasErrorShape(body: Buffer): boolean {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
    return typeof parsed?.error?.code === 'string' && typeof parsed.error.message === 'string';
  } catch {
    return false;
  }
}

/** Mutating requests may store something: the engine must still run over what they stored. */
const mutating = (method: string) => method !== 'GET';

/** A file each case is appended to before it is sent: what was running when a process died or hung. */
const TRACE = process.env.FUZZ_TRACE;

export async function runCase(target: FuzzTarget, request: FuzzRequest): Promise<CaseResult> {
  if (TRACE) {
    appendFileSync(
      TRACE,
      `${request.op} ${request.transport} [${request.label}] ${request.method} ${request.url}\n`,
    );
  }
  const failures: CaseFailure[] = [];
  const fail = (property: FuzzProperty, status: number, answer: string) =>
    failures.push({
      op: request.op,
      property,
      label: abridge(request.label, 200),
      method: request.method,
      url: abridge(request.rawTarget ? request.rawTarget.toString('latin1') : request.url, 200),
      body: describeBody(request.body),
      status,
      answer: abridge(answer),
    });

  let status = 0;
  let ms = 0;
  let healthzMs = 0;
  try {
    const { answer, healthz } = await target.send(request);
    status = answer.status;
    ms = answer.ms;
    healthzMs = healthz.maxMs;
    const text = answer.body.toString('utf8');
    if (answer.noAnswer) fail('crash', 0, answer.noAnswer);
    else if (status >= 500) fail('status', status, text);
    else if (status >= 400 && !hasErrorShape(answer.body)) fail('shape', status, text || '(empty body)');
    if (!healthz.answered) fail('healthz', status, '/healthz did not answer 200 while the case ran');
  } catch (error) {
    fail('crash', 0, error instanceof Error ? (error.stack ?? error.message) : String(error));
  }

  const problems = await target
    .checkHealthy(mutating(request.method))
    .catch((error: unknown) => [
      `health check threw: ${error instanceof Error ? error.message : String(error)}`,
    ]);
  if (problems.length > 0) {
    fail('poisoned', status, problems.join(' | '));
    await target.reset();
  }
  return { failures, status, ms, healthzMs };
}
