/** Draws from a scenario's distributions (install_seconds) with uniform numbers the caller seeds. */
import type { Distribution } from './scenario.js';

/** A standard normal from two uniforms (Box–Muller). */
const gaussian = (u1: number, u2: number) => Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);

/** Seconds, at least 1. */
export function draw(d: Distribution, u1: number, u2: number): number {
  switch (d.kind) {
    case 'fixed':
      return d.value;
    case 'uniform':
      return d.min + (d.max - d.min) * u1;
    case 'normal':
      return Math.max(1, d.mean + d.stddev * gaussian(u1, u2));
    case 'lognormal':
      return Math.max(1, d.median * Math.exp(d.sigma * gaussian(u1, u2)));
  }
}
