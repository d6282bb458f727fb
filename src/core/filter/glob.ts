/** Globs for `id` and `name`: `*` matches any run of characters (also none), `?` exactly one character. */

export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

export function globToRegExp(pattern: string): RegExp {
  const body = Array.from(pattern, (c) =>
    c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'),
  ).join('');
  // `s`: a wildcard also matches a newline; `u`: `?` is one code point, as LIKE's `_` is one character.
  return new RegExp(`^${body}$`, 'su');
}
