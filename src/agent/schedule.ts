/** When to act next: pure functions of the server's answer, the failure count and a random source. */

import { mulberry32 } from '../core/random.js';

export type Random = () => number;

/** A seeded generator: tests and simulations get the same jitter on every run. */
export const seededRandom: (seed: number) => Random = mulberry32;

/** `seconds` ±10 %, so a fleet that reboots together does not heartbeat together. */
export function heartbeatDelayMs(seconds: number, random: Random): number {
  const base = Math.max(1, seconds) * 1000;
  return Math.round(base * (0.9 + 0.2 * random()));
}

/** Exponential backoff after `failures` consecutive failures (1 s, 2 s, 4 s … capped), with ±10 % jitter. */
export function backoffMs(failures: number, random: Random, capMs = 300_000): number {
  const base = Math.min(capMs, 1000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.9 + 0.2 * random()));
}

/** Tracks consecutive failures of one kind of call and when the next attempt is due. */
export class Backoff {
  private failures = 0;
  private due = 0;

  constructor(
    private readonly random: Random,
    private readonly capMs = 300_000,
  ) {}

  ready(now: number): boolean {
    return now >= this.due;
  }

  /** Milliseconds until the next attempt (0 when not backing off). */
  waitMs(now: number): number {
    return Math.max(0, this.due - now);
  }

  failed(now: number): number {
    this.failures += 1;
    const wait = backoffMs(this.failures, this.random, this.capMs);
    this.due = now + wait;
    return wait;
  }

  succeeded(): void {
    this.failures = 0;
    this.due = 0;
  }
}
