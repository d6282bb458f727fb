/**
 * Values no column can hold, found in one pass over parsed input: a NUL character (PostgreSQL text refuses it,
 * SQLite would store it and cut it short in C APIs) in any string or object key, and numbers that are not
 * finite (`1e400` parses to Infinity, which no integer column and no JSON serializer takes). The walk uses
 * its own stack, so deeply nested input cannot overflow the call stack, and visits every value once.
 */
export interface Unstorable {
  /** A JSON pointer to the value, e.g. `/tags/site` ("" for the value itself). */
  path: string;
  problem: string;
}

const NUL = '\u0000';
const NUL_PROBLEM = 'must not contain a NUL character (\\u0000)';
const escapeKey = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** Where a container sits: the path is spelled out only for a value found wanting (no strings per value). */
interface Place {
  parent: Place | undefined;
  key: string | number;
}

function pathOf(place: Place | undefined, key?: string | number): string {
  const keys: Array<string | number> = key === undefined ? [] : [key];
  for (let p = place; p; p = p.parent) keys.push(p.key);
  return keys.reduceRight<string>((path, k) => `${path}/${typeof k === 'string' ? escapeKey(k) : k}`, '');
}

/** What is wrong with a leaf value, if anything; containers are walked by the caller. */
function leafProblem(v: unknown): string | undefined {
  if (typeof v === 'string') return v.includes(NUL) ? NUL_PROBLEM : undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : 'must be a finite number';
  return undefined;
}

const isContainer = (v: unknown): v is object => typeof v === 'object' && v !== null;

export function findUnstorable(value: unknown): Unstorable | undefined {
  const problem = leafProblem(value);
  if (problem) return { path: '', problem };
  if (!isContainer(value)) return undefined;
  // Containers only: leaves are checked where they are met, so ordinary input allocates nothing per value.
  const stack: Array<[object, Place | undefined]> = [[value, undefined]];
  while (stack.length > 0) {
    const [v, place] = stack.pop()!;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        const wrong = leafProblem(item);
        if (wrong) return { path: pathOf(place, i), problem: wrong };
        if (isContainer(item)) stack.push([item, { parent: place, key: i }]);
      }
    } else {
      for (const key of Object.keys(v)) {
        if (key.includes(NUL)) return { path: pathOf(place, key), problem: `${NUL_PROBLEM} in its name` };
        const item: unknown = (v as Record<string, unknown>)[key];
        const wrong = leafProblem(item);
        if (wrong) return { path: pathOf(place, key), problem: wrong };
        if (isContainer(item)) stack.push([item, { parent: place, key }]);
      }
    }
  }
  return undefined;
}
