/** The filter language: `status=online and tag.region in (northeast, west) and firmware < 2.2.0`. */
export type {
  FilterNode,
  InventoryField,
  KeyBound,
  KeyRange,
  OrderOp,
  TextField,
  TimeField,
  TimeValue,
} from './ast.js';
export { compareOrder, resolveTime } from './ast.js';
export { type FilterContext, matchesFilter } from './evaluate.js';
export { expandGroups, type GroupDefinition, groupNames, MAX_GROUP_DEPTH } from './expand.js';
export { globToRegExp, hasWildcard } from './glob.js';
export { GROUP_NAME } from './group-name.js';
export { FIELD_NAMES, parseFilter } from './parser.js';
