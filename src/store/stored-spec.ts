/**
 * A rollout's spec as stored (its normalized JSON document), parsed once: the engine and every slot grant
 * read the rollout, and validating the document again each time cost more than the query. A spec never
 * changes after creation, so its text is the key; callers must treat the result as read-only. It is read with
 * the stored limits (what it was accepted under), and written only after storedSpecText checked it reads back.
 */
import { parseRolloutSpec, type RolloutSpec, STORED_LIMITS } from '../core/rollout/spec.js';

const MAX_SPECS = 1_000;
const parsed = new Map<string, RolloutSpec>();

export function storedSpec(text: string): RolloutSpec {
  let spec = parsed.get(text);
  if (!spec) {
    spec = parseRolloutSpec(JSON.parse(text), STORED_LIMITS);
    if (parsed.size >= MAX_SPECS) parsed.delete(parsed.keys().next().value!);
    parsed.set(text, spec);
  }
  return spec;
}
