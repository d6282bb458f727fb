/**
 * Seeded randomness: nothing in FleetD calls Math.random() where a result must be reproducible — canary
 * choice, jitter in tests and simulations, generated benchmark fleets all come from a recorded seed.
 */

/** mulberry32: a tiny 32-bit PRNG, uniform in [0, 1). Good enough to spread devices; not for secrets. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
