/**
 * Seeded, stateless randomness for the simulator: every draw is a hash of (seed, device, salt…), so a
 * device's day, failure or install time is the same whatever order the simulation asks in, and nothing is
 * stored per device to reproduce it.
 */

import { seedFromText } from '../core/rollout/random.js';

const SEED = 0x9e3779b9;

function mix(h: number, p: number): number {
  let k = Math.imul(p | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  return Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit mix (murmur3's finalizer) of the inputs. */
export function hash32(...parts: number[]): number {
  let h = SEED;
  for (const p of parts) h = mix(h, p);
  return finish(h);
}

/** A uniform number in [0, 1) from the inputs. */
export const uniform = (...parts: number[]): number => hash32(...parts) / 4_294_967_296;

/** `uniform(a, b, c, d)` without an array per call: the profiles draw millions of these. */
export const uniform4 = (a: number, b: number, c: number, d: number): number =>
  finish(mix(mix(mix(mix(SEED, a), b), c), d)) / 4_294_967_296;

/** A stable 32-bit salt from a name (a release, a group): FNV-1a, as a rollout's default seed. */
export const textSalt = seedFromText;

/** Picks from `[value, share]` pairs with a uniform number u in [0, 1). */
export function pick<T>(choices: ReadonlyArray<readonly [T, number]>, u: number): T {
  const sum = choices.reduce((s, [, w]) => s + w, 0);
  let x = u * sum;
  for (const [value, w] of choices) {
    x -= w;
    if (x < 0) return value;
  }
  return choices[choices.length - 1]![0];
}
