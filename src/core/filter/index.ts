/** The filter language: `status=online and tag.region in (northeast, west) and firmware < 2.2.0`. */
export type { FilterNode, KeyBound, KeyRange, OrderOp, TextField, TimeField, TimeValue } from './ast.js';
export { compareOrder, resolveTime } from './ast.js';
export { type FilterContext, matchesFilter } from './evaluate.js';
export { globToRegExp, hasWildcard } from './glob.js';
export { FIELD_NAMES, parseFilter } from './parser.js';
