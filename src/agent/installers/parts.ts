/**
 * What one install is made of: a single release is one part, a bundle one part per component. Parts
 * install in order, all or nothing: a handler whose install fails cleans up after itself, then every part
 * before it is rolled back, last first, and the reason names the part that failed and whether that held.
 */
import type { Verdict } from '../verify.js';
import { type InstallContext, no, ok } from './handler.js';
import { handlerFor } from './index.js';

export interface Part {
  name: string;
  type: string;
  version: string;
  payload: string;
  previous: string | undefined;
}

export type PartContext = Omit<InstallContext, 'name' | 'version' | 'payload' | 'previous'>;

const contextOf = (part: Part, base: PartContext): InstallContext => ({
  ...base,
  name: part.name,
  version: part.version,
  payload: part.payload,
  previous: part.previous,
});

export async function installParts(parts: Part[], base: PartContext): Promise<Verdict> {
  for (const [i, part] of parts.entries()) {
    const handler = handlerFor(part.type);
    const outcome = handler
      ? await handler.install(contextOf(part, base))
      : no(`no installer for type ${part.type}`);
    if (outcome.ok) continue;
    const undone = await settleParts('rollback', parts.slice(0, i), base);
    const label = parts.length > 1 ? `component ${i + 1} (${part.name} ${part.version}): ` : '';
    const after = undone.ok
      ? parts.length > 1 && i > 0
        ? `; rolled back ${parts
            .slice(0, i)
            .map((p) => p.name)
            .join(', ')}`
        : ''
      : `; rollback failed too: ${undone.reason}`;
    return no(`${label}${outcome.reason}${after}`);
  }
  return ok;
}

/** Commits in install order, rolls back in reverse; every part is tried even when one fails. */
export async function settleParts(
  stage: 'commit' | 'rollback',
  parts: Part[],
  base: PartContext,
): Promise<Verdict> {
  const failures: string[] = [];
  const ordered = stage === 'rollback' ? [...parts].reverse() : parts;
  for (const part of ordered) {
    const handler = handlerFor(part.type);
    if (!handler) continue;
    let outcome: Verdict;
    try {
      outcome = await handler[stage](contextOf(part, base));
    } catch (e) {
      outcome = no((e as Error).message);
    }
    if (!outcome.ok) failures.push(`${part.name}: ${outcome.reason}`);
  }
  return failures.length === 0 ? ok : no(failures.join('; '));
}
