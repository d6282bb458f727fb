/**
 * YAML request bodies (rollout specs). The yaml parser recurses once per nesting level: a body of 10,000 nested
 * flow collections (60 KB) overflows the stack, and when the overflow lands in a regular-expression compile V8
 * aborts the whole process ("RegExpCompiler Allocation failed") instead of throwing. Nesting is therefore
 * measured first, in one linear pass, and anything deeper than a spec could need is refused before parsing.
 */
import { parse as parseYaml } from 'yaml';
import { FleetError } from '../core/errors.js';

/** Far above a rollout spec's own depth (about 4), far below the depth at which the parser overflows. */
export const MAX_YAML_DEPTH = 64;
/** Block nesting is indentation: a line indented this far is nested deeper than any spec. */
const MAX_INDENT = 256;

/** The deepest flow nesting (`[`, `{`) outside quoted scalars and comments; stops counting past `limit`. */
function flowDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (c === '[' || c === '{') {
      depth++;
      if (depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
    else if (c === '\n') quote = undefined;
  }
  return deepest;
}

function deepestIndent(text: string): number {
  let deepest = 0;
  let indent = 0;
  let atStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      atStart = true;
      indent = 0;
    } else if (atStart && (c === ' ' || c === '-' || c === '\t')) {
      indent++;
      if (indent > deepest) deepest = indent;
    } else atStart = false;
  }
  return deepest;
}

/** Parses a YAML body, refusing (400) one nested too deeply to be a spec before the parser sees it. */
export function parseYamlBody(text: string): unknown {
  if (flowDepth(text, MAX_YAML_DEPTH) > MAX_YAML_DEPTH || deepestIndent(text) > MAX_INDENT) {
    throw new FleetError('VALIDATION', `spec: YAML nested deeper than ${MAX_YAML_DEPTH} levels`, {
      field: 'spec',
    });
  }
  try {
    return parseYaml(text);
  } catch (e) {
    throw new FleetError(
      'VALIDATION',
      `spec: not valid YAML: ${(e as Error).message}`,
      { field: 'spec' },
      { cause: e },
    );
  }
}
