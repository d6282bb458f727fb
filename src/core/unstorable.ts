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

export function findUnstorable(value: unknown): Unstorable | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes(NUL)) return { path, problem: NUL_PROBLEM };
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { path, problem: 'must be a finite number' };
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push([v[i], `${path}/${i}`]);
    } else if (typeof v === 'object' && v !== null) {
      for (const key of Object.keys(v)) {
        const at = `${path}/${escapeKey(key)}`;
        if (key.includes(NUL)) return { path: at, problem: `${NUL_PROBLEM} in its name` };
        stack.push([(v as Record<string, unknown>)[key], at]);
      }
    }
  }
  return undefined;
}
