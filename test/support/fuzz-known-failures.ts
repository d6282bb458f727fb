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

export const KNOWN_FAILURES: readonly KnownFailure[] = [];

export function knownFailure(failure: CaseFailure): KnownFailure | undefined {
  return KNOWN_FAILURES.find((k) => k.matches(failure));
}
