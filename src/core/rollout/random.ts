/**
 * A rollout's random choices, reproduced exactly from the seed it records.
 */
import { mulberry32 } from '../random.js';

/** Fisher–Yates on a copy. */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const next = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const swapped = out[i]!;
    out[i] = out[j]!;
    out[j] = swapped;
  }
  return out;
}

/** FNV-1a: a stable 32-bit seed from text (a rollout's default seed comes from its name and release). */
export function seedFromText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
