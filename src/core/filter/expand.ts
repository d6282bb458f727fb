/**
 * Groups in filters: `group = NAME` names a static group (a list of device ids) or a dynamic one (a saved
 * filter). Expansion replaces each such term before a filter is compiled to SQL or evaluated: a dynamic group
 * by its own filter (expanded in turn), a static one by a membership test. A group that names itself through
 * others, or nests deeper than MAX_GROUP_DEPTH, is refused with the chain that does it.
 */
import { FleetError } from '../errors.js';
import type { FilterNode } from './ast.js';
import { parseFilter } from './parser.js';

/** How deep dynamic groups may name other groups: deep enough for regions of regions, short enough to read. */
export const MAX_GROUP_DEPTH = 8;

export type GroupDefinition =
  | { id: string; kind: 'static' }
  | { id: string; kind: 'dynamic'; filter: string };

/** The group names a filter mentions directly (not those its dynamic groups mention). */
export function groupNames(node: FilterNode | undefined, into = new Set<string>()): Set<string> {
  if (node === undefined) return into;
  switch (node.kind) {
    case 'and':
    case 'or':
      for (const c of node.children) groupNames(c, into);
      return into;
    case 'not':
      return groupNames(node.child, into);
    case 'group':
      into.add(node.name);
      return into;
    default:
      return into;
  }
}

function refuse(message: string, details: Record<string, unknown>): never {
  throw new FleetError('FILTER_SYNTAX', message, details);
}

function expand(
  node: FilterNode,
  lookup: (name: string) => GroupDefinition | undefined,
  path: string[],
): FilterNode {
  switch (node.kind) {
    case 'and':
    case 'or':
      return { kind: node.kind, children: node.children.map((c) => expand(c, lookup, path)) };
    case 'not':
      return { kind: 'not', child: expand(node.child, lookup, path) };
    case 'group': {
      const chain = [...path, node.name];
      if (path.includes(node.name)) {
        refuse(`group ${node.name} names itself: ${chain.join(' → ')}`, { cycle: chain });
      }
      if (chain.length > MAX_GROUP_DEPTH) {
        refuse(`groups nest more than ${MAX_GROUP_DEPTH} deep: ${chain.join(' → ')}`, { chain });
      }
      const group = lookup(node.name);
      if (group === undefined) {
        const where = path.length === 0 ? '' : ` (named by group ${path[path.length - 1]})`;
        refuse(`group ${node.name} does not exist${where}; fleetd groups ls lists them`, {
          group: node.name,
        });
      }
      if (group.kind === 'static') return { kind: 'member', groupId: group.id };
      let inner: FilterNode | undefined;
      try {
        inner = parseFilter(group.filter);
      } catch (e) {
        // Saved filters were parsed when saved; a grammar change since then is still named, not a 500.
        refuse(`group ${node.name}'s filter no longer parses: ${(e as Error).message}`, { group: node.name });
      }
      return inner === undefined ? { kind: 'and', children: [] } : expand(inner, lookup, chain);
    }
    default:
      return node;
  }
}

/** The filter with every group term replaced; the same node when it has none. */
export function expandGroups(
  node: FilterNode | undefined,
  lookup: (name: string) => GroupDefinition | undefined,
): FilterNode | undefined {
  if (node === undefined || groupNames(node).size === 0) return node;
  return expand(node, lookup, []);
}
