/**
 * Failures the fuzz suite finds today that issue 13's numbered defects fix on other branches. A failure that
 * matches an entry is counted and reported, not failed on; every other failure fails the suite.
 *
 * INTEGRATOR: once the fixes are merged, empty KNOWN_FAILURES (and delete entries as their defects land);
 * the suite must then pass with none.
 */
import type { CaseFailure } from './fuzz-run.js';

export interface KnownFailure {
  /** The defect number in issue 13 whose fix removes these failures. */
  defect: number;
  /** What is wrong, in one line. */
  why: string;
  /** Which failures this entry covers. */
  matches(failure: CaseFailure): boolean;
}

/** A duration far beyond any bound (defect 1): 20000000w, 99999999999999999999w, 15000000w, 1e3… */
const ABSURD_DURATION = /"\d{7,}(\.\d+)?w"|"\d{9,}(\.\d+)?(ms|s|m|h|d)"/;
/** A number no column or serializer holds (defect 16): 1e400, Infinity, 2^63, 1e300… */
const ABSURD_NUMBER = /(=|%3D)(-?Infinity|-?1e[34]00|9223372036854775808|\d{17,})(&|$)|=1e\+?\d{2,}/i;
const framework = (f: CaseFailure) => /"code":"FST_ERR_|"message":"Client Error"/.test(f.answer);

export const KNOWN_FAILURES: readonly KnownFailure[] = [
  {
    defect: 1,
    why: 'a rollout or enrollment token with an absurd duration answers 400/500 yet is stored, and breaks reads',
    matches: (f) =>
      (f.op === 'POST /api/v1/rollouts' || f.op === 'POST /api/v1/enrollment-tokens') &&
      (f.property === 'poisoned' || f.property === 'status') &&
      ABSURD_DURATION.test(f.body.replace(/\\"/g, '"')),
  },
  {
    defect: 2,
    why: 'NUL in a path, query or body string, or an integer beyond its column, is a 500 on PostgreSQL',
    matches: (f) =>
      f.property === 'status' &&
      (/%00|\\u0000/.test(f.url) ||
        f.body.includes('\\u0000') ||
        /"seq":\s*(\d{10,}|[\d.]+e\+?\d+)/i.test(f.body)),
  },
  {
    defect: 13,
    why: 'the HTTP parser answers an oversize header or URL with 431 {"error":"Request Header Fields Too Large"}',
    matches: (f) => f.property === 'shape' && f.status === 431,
  },
  {
    defect: 16,
    why: 'numeric extremes (limit=1e400, after=Infinity, since=999999999999999w, uses=2^53) reach SQL: 500',
    matches: (f) =>
      f.property === 'status' &&
      (ABSURD_NUMBER.test(f.url) ||
        /since=\d{9,}/.test(f.url) ||
        /\\"uses\\":\s*(\d{10,}|[\d.]+e\+?\d+)/i.test(f.body)),
  },
  {
    defect: 17,
    why: 'POST /artifacts with a content type other than octet-stream, or an empty device id, is a 500',
    matches: (f) =>
      f.property === 'status' &&
      (f.op === 'POST /api/v1/artifacts' ||
        (f.op === 'POST /api/v1/devices/{id}/credential' && f.url.includes('//'))),
  },
  {
    defect: 20,
    why: 'framework answers (bad URL encoding 400, long parameter 414, bad framing "Client Error") bypass the error shape',
    matches: (f) => f.property === 'shape' && (framework(f) || f.status === 414 || f.status === 416),
  },
];

export function knownFailure(failure: CaseFailure): KnownFailure | undefined {
  return KNOWN_FAILURES.find((k) => k.matches(failure));
}
