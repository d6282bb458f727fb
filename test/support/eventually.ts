/**
 * The one way tests wait: poll a condition until it holds, within a bounded time, and fail naming what was
 * awaited and what was seen last. Never a fixed sleep standing in for a condition.
 */

export interface EventuallyOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Longest pause between two looks (default 100 ms); the first looks come sooner. */
  intervalMs?: number;
}

/**
 * Resolves with the first value `check` gives that is neither `undefined` nor `false`. A check that throws
 * counts as "not yet"; its last error is what the timeout reports (so a check can say what it saw).
 */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: EventuallyOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  let pause = Math.min(5, intervalMs);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const seen = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, intervalMs);
  }
}
