/**
 * What to do when a supervised application exits on its own: start it again after a delay that doubles with
 * each crash in the window (1 s, 2 s, 4 s… up to `maxDelayMs`), or, after `maxCrashes` crashes within
 * `windowMs`, stop trying: a crash loop, which the agent reports and its health check counts as a failure
 * (so a release that crash-loops its application is rolled back). Pure: the caller supplies the times.
 */
export interface CrashPolicy {
  windowMs: number;
  maxCrashes: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_CRASH_POLICY: CrashPolicy = {
  windowMs: 60_000,
  maxCrashes: 5,
  baseDelayMs: 1_000,
  maxDelayMs: 30_000,
};

export type AfterExit = { action: 'restart'; delayMs: number } | { action: 'crash-loop'; crashes: number };

/** `crashes`: the times of earlier crashes; `now`: this one's. Returns the decision and the window kept. */
export function afterExit(
  crashes: readonly number[],
  now: number,
  policy: CrashPolicy = DEFAULT_CRASH_POLICY,
): { decision: AfterExit; crashes: number[] } {
  const recent = [...crashes.filter((t) => now - t < policy.windowMs), now];
  if (recent.length >= policy.maxCrashes) {
    return { decision: { action: 'crash-loop', crashes: recent.length }, crashes: recent };
  }
  const delayMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (recent.length - 1));
  return { decision: { action: 'restart', delayMs }, crashes: recent };
}
