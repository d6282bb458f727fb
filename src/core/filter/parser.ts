/**
 * Recursive-descent parser for the filter language (precedence: not > and > or). Every error is a
 * FILTER_SYNTAX FleetError whose message starts with the 1-based column of the offending token.
 */
import { DEVICE_STATUSES, type DeviceStatus } from '../device.js';
import { tryParseDuration } from '../duration.js';
import { FleetError } from '../errors.js';
import { keyOf, parseRange, parseVersionLenient } from '../semver.js';
import type { FilterNode, InventoryField, KeyRange, OrderOp, TextField, TimeField } from './ast.js';
import { GROUP_NAME } from './group-name.js';
import { type Token, tokenize } from './lexer.js';
import { parseInstant } from './time.js';

const KEYWORDS = new Set(['and', 'or', 'not', 'in']);
export const FIELD_NAMES = [
  'status',
  'id',
  'name',
  'tag.<key>',
  'firmware',
  'hardware',
  'timezone',
  'location',
  'customer',
  'admission',
  'last_seen',
  'created',
  'telemetry.<name>',
  'inventory.os',
  'inventory.kernel',
  'inventory.package.<name>',
  'group',
  'config.drift',
];
const TEXT_FIELDS = new Set<string>([
  'id',
  'name',
  'hardware',
  'timezone',
  'location',
  'customer',
  'admission',
]);
const TAG_KEY = /^[A-Za-z0-9_.:-]+$/;
const MAX_DEPTH = 100;
const DAY = 86_400_000;
const TIME_HELP = 'a date (2024-10-20), an instant (2024-10-20T14:00:00Z) or a relative time (30d ago)';

type Field =
  | { kind: 'status' }
  | { kind: 'text'; field: TextField }
  | { kind: 'tag'; key: string }
  | { kind: 'firmware' }
  | { kind: 'time'; field: TimeField }
  | { kind: 'telemetry'; name: string }
  | { kind: 'inventory'; field: InventoryField }
  | { kind: 'package'; name: string }
  | { kind: 'group' }
  | { kind: 'config_drift' };
type Operator = '=' | '!=' | OrderOp | 'in' | 'not in';
interface Operand {
  text: string;
  column: number;
  /** The milliseconds of a duration followed by `ago`. */
  ago: number | undefined;
}

const isKeyword = (t: Token, word: string) => t.type === 'word' && t.text.toLowerCase() === word;

function describe(t: Token): string {
  if (t.type === 'end') return 'end of input';
  if (t.type === 'string') return JSON.stringify(t.text);
  if (t.type === 'word' && KEYWORDS.has(t.text.toLowerCase())) return `keyword '${t.text}'`;
  return `'${t.text}'`;
}

function syntaxError(column: number, message: string, expected: string, found: string): FleetError {
  return new FleetError('FILTER_SYNTAX', `column ${column}: ${message}`, { column, expected, found });
}

/** `column N: expected X after Y, found Z` */
function unexpected(t: Token, expected: string, after?: Token): FleetError {
  const found = describe(t);
  const where = after
    ? ` after ${after.type === 'string' ? JSON.stringify(after.text) : `'${after.text}'`}`
    : '';
  const hint = t.type === 'word' && expected === 'a value' ? ' (quote it to use it as a value)' : '';
  return syntaxError(t.column, `expected ${expected}${where}, found ${found}${hint}`, expected, found);
}

class Parser {
  private i = 0;

  constructor(private readonly tokens: Token[]) {}

  peek(): Token {
    return this.tokens[this.i]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== 'end') this.i++;
    return t;
  }

  private previous(): Token | undefined {
    return this.tokens[this.i - 1];
  }

  or(depth: number): FilterNode {
    const children = [this.and(depth)];
    while (isKeyword(this.peek(), 'or')) {
      this.next();
      children.push(this.and(depth));
    }
    return children.length === 1 ? children[0]! : { kind: 'or', children };
  }

  private and(depth: number): FilterNode {
    const children = [this.unary(depth)];
    while (isKeyword(this.peek(), 'and')) {
      this.next();
      children.push(this.unary(depth));
    }
    return children.length === 1 ? children[0]! : { kind: 'and', children };
  }

  private unary(depth: number): FilterNode {
    const t = this.peek();
    if (depth > MAX_DEPTH) {
      throw syntaxError(
        t.column,
        `expression nested too deeply (more than ${MAX_DEPTH} levels)`,
        'less nesting',
        describe(t),
      );
    }
    if (isKeyword(t, 'not')) {
      this.next();
      return { kind: 'not', child: this.unary(depth + 1) };
    }
    if (t.type === '(') {
      this.next();
      const inner = this.or(depth + 1);
      if (this.peek().type !== ')') throw unexpected(this.peek(), "'and', 'or' or ')'");
      this.next();
      return inner;
    }
    return this.comparison();
  }

  private comparison(): FilterNode {
    const before = this.previous();
    const name = this.next();
    if (name.type !== 'word' || KEYWORDS.has(name.text.toLowerCase()))
      throw unexpected(name, 'a field', before);
    if (
      name.text.toLowerCase() === 'location' &&
      (isKeyword(this.peek(), 'near') || isKeyword(this.peek(), 'within'))
    )
      return this.geo(this.next());
    const field = resolveField(name);
    const opToken = this.next();
    let op: Operator;
    if (opToken.type === 'op') op = opToken.text as Operator;
    else if (isKeyword(opToken, 'in')) op = 'in';
    else if (isKeyword(opToken, 'not') && isKeyword(this.peek(), 'in')) {
      this.next();
      op = 'not in';
    } else throw unexpected(opToken, 'an operator (=, !=, <, <=, >, >=, in, not in)', name);

    const operands = op === 'in' || op === 'not in' ? this.list(field) : [this.operand(field)];
    const node = build(field, name.text, op, opToken, operands);
    return op === '!=' || op === 'not in' ? { kind: 'not', child: node } : node;
  }

  /** `near (lat, lon, 50km)` or `within (south, west, north, east)`, after `location`. */
  private geo(keyword: Token): FilterNode {
    const near = keyword.text.toLowerCase() === 'near';
    const open = this.next();
    if (open.type !== '(') throw unexpected(open, "'('", keyword);
    const values: Token[] = [];
    for (;;) {
      const t = this.next();
      if (t.type !== 'word' && t.type !== 'string') throw unexpected(t, 'a number', this.previous());
      values.push(t);
      const sep = this.next();
      if (sep.type === ')') break;
      if (sep.type !== ',') throw unexpected(sep, "',' or ')'", t);
    }
    const want = near ? 3 : 4;
    if (values.length !== want) {
      const expected = near ? '(latitude, longitude, distance)' : '(south, west, north, east)';
      throw syntaxError(
        open.column,
        `location ${keyword.text} takes ${expected}`,
        expected,
        `${values.length} values`,
      );
    }
    const lat = (t: Token) => coordinate(t, 90);
    const lon = (t: Token) => coordinate(t, 180);
    if (near) return { kind: 'near', lat: lat(values[0]!), lon: lon(values[1]!), km: distanceKm(values[2]!) };
    const [south, west, north, east] = [lat(values[0]!), lon(values[1]!), lat(values[2]!), lon(values[3]!)];
    if (south > north) {
      const expected = 'south <= north';
      throw syntaxError(
        values[0]!.column,
        `the box's south ${south} is north of its north ${north}`,
        expected,
        `${south}`,
      );
    }
    return { kind: 'box', south, west, north, east };
  }

  private list(field: Field): Operand[] {
    const after = this.previous();
    const open = this.next();
    if (open.type !== '(') throw unexpected(open, "'('", after);
    const operands = [this.operand(field)];
    while (this.peek().type === ',') {
      this.next();
      operands.push(this.operand(field));
    }
    const close = this.next();
    if (close.type !== ')') throw unexpected(close, "',' or ')'");
    return operands;
  }

  private operand(field: Field): Operand {
    const after = this.previous();
    const t = this.next();
    const isValue = t.type === 'string' || (t.type === 'word' && !KEYWORDS.has(t.text.toLowerCase()));
    if (!isValue) throw unexpected(t, 'a value', after);
    const ms = field.kind === 'time' && t.type === 'word' ? tryParseDuration(t.text) : undefined;
    if (ms === undefined) return { text: t.text, column: t.column, ago: undefined };
    if (!isKeyword(this.peek(), 'ago')) throw unexpected(this.peek(), "'ago'", t);
    if (!Number.isSafeInteger(ms))
      throw syntaxError(t.column, `duration '${t.text}' is too large`, 'a duration', `'${t.text}'`);
    this.next();
    return { text: t.text, column: t.column, ago: ms };
  }
}

const NUMBER = /^-?\d+(\.\d+)?$/;

function coordinate(t: Token, limit: number): number {
  const value = NUMBER.test(t.text) ? Number(t.text) : Number.NaN;
  if (!(Math.abs(value) <= limit)) {
    const expected = `a number from -${limit} to ${limit}`;
    throw syntaxError(t.column, `expected ${expected}, found '${t.text}'`, expected, `'${t.text}'`);
  }
  return value;
}

/** `50km`, `500m`, or a bare number of km. */
function distanceKm(t: Token): number {
  const match = /^(\d+(?:\.\d+)?)(km|m)?$/.exec(t.text);
  const value = match ? Number(match[1]) / (match[2] === 'm' ? 1000 : 1) : Number.NaN;
  if (!(value > 0 && value <= 20_000)) {
    const expected = 'a distance up to 20000km (50km, 500m)';
    throw syntaxError(t.column, `expected ${expected}, found '${t.text}'`, expected, `'${t.text}'`);
  }
  return value;
}

/** `telemetry.<name>`, `inventory.os`, `inventory.kernel`, `inventory.package.<name>`; undefined otherwise. */
function reportedField(t: Token): Field | undefined {
  const lower = t.text.toLowerCase();
  const named = (prefix: string, what: string): string => {
    const key = t.text.slice(prefix.length);
    if (!TAG_KEY.test(key) && !(what === 'package' && /^[A-Za-z0-9_.:+-]+$/.test(key))) {
      const expected = `a ${what} name of letters, digits and _ . : -`;
      throw syntaxError(
        t.column + prefix.length,
        `invalid ${what} name '${key}': expected ${expected}`,
        expected,
        `'${key}'`,
      );
    }
    return key;
  };
  if (lower.startsWith('telemetry.')) return { kind: 'telemetry', name: named('telemetry.', 'metric') };
  if (lower.startsWith('inventory.package.'))
    return { kind: 'package', name: named('inventory.package.', 'package') };
  if (lower === 'inventory.os') return { kind: 'inventory', field: 'os' };
  if (lower === 'inventory.kernel') return { kind: 'inventory', field: 'kernel' };
  return undefined;
}

function resolveField(t: Token): Field {
  const reported = reportedField(t);
  if (reported) return reported;
  const lower = t.text.toLowerCase();
  if (lower.startsWith('tag.')) {
    const key = t.text.slice(4);
    if (!TAG_KEY.test(key)) {
      const expected = 'a tag key of letters, digits and _ . : -';
      throw syntaxError(t.column + 4, `invalid tag key '${key}': expected ${expected}`, expected, `'${key}'`);
    }
    return { kind: 'tag', key };
  }
  if (lower === 'config.drift') return { kind: 'config_drift' };
  if (lower === 'status') return { kind: 'status' };
  if (lower === 'group') return { kind: 'group' };
  if (lower === 'firmware') return { kind: 'firmware' };
  if (lower === 'last_seen' || lower === 'created') return { kind: 'time', field: lower };
  if (TEXT_FIELDS.has(lower)) return { kind: 'text', field: lower as TextField };
  const known = FIELD_NAMES.join(', ');
  throw syntaxError(t.column, `unknown field '${t.text}'; known fields: ${known}`, known, `'${t.text}'`);
}

const isOrder = (op: Operator): op is OrderOp => op === '<' || op === '<=' || op === '>' || op === '>=';

function build(field: Field, name: string, op: Operator, opToken: Token, operands: Operand[]): FilterNode {
  const ordered = ['firmware', 'time', 'telemetry', 'package'];
  if (isOrder(op) && !ordered.includes(field.kind)) {
    const expected = '=, !=, in or not in';
    const message = `'${op}' cannot compare ${name}: only firmware, last_seen and created are ordered (and telemetry.<name>, inventory.package.<name>); use ${expected}`;
    throw syntaxError(opToken.column, message, expected, `'${op}'`);
  }
  switch (field.kind) {
    case 'status':
      return { kind: 'status', values: [...new Set(operands.map(status))] };
    case 'text':
      return {
        kind: 'text',
        field: field.field,
        values: operands.map((o) => o.text),
        glob: field.field === 'id' || field.field === 'name',
      };
    case 'tag':
      return { kind: 'tag', key: field.key, values: operands.map((o) => o.text) };
    case 'group': {
      const groups = operands.map((o): FilterNode => ({ kind: 'group', name: groupName(o) }));
      return groups.length === 1 ? groups[0]! : { kind: 'or', children: groups };
    }
    case 'firmware':
      return isOrder(op)
        ? { kind: 'firmware', ranges: [orderRange(op, operands[0]!)] }
        : { kind: 'firmware', ranges: operands.map(versionRange) };
    case 'time':
      return time(field.field, op, opToken, operands[0]!);
    case 'inventory':
      return { kind: 'inventory', field: field.field, values: operands.map((o) => o.text) };
    case 'package':
      return isOrder(op)
        ? { kind: 'package', name: field.name, ranges: [orderRange(op, operands[0]!)] }
        : { kind: 'package', name: field.name, ranges: operands.map(versionRange) };
    case 'telemetry': {
      refuseSetOperator(name, op, opToken, '=, !=, <, <=, >, >=');
      const o = operands[0]!;
      if (!NUMBER.test(o.text)) throw badOperand(o, op, 'a number (10, 2.5, -3)');
      return { kind: 'telemetry', name: field.name, op: op === '!=' ? '=' : op, value: Number(o.text) };
    }
    case 'config_drift':
      return configDrift(name, op, opToken, operands);
  }
}

/** The names `fleetd groups create` accepts (group-name.ts). */
function groupName(o: Operand): string {
  if (GROUP_NAME.test(o.text)) return o.text;
  const expected = 'a group name of letters, digits and _ . -';
  throw syntaxError(
    o.column,
    `invalid group name '${o.text}': expected ${expected}`,
    expected,
    `'${o.text}'`,
  );
}

/** `config.drift = true|false` (or `!=`): one boolean. */
function configDrift(name: string, op: Operator, opToken: Token, operands: Operand[]): FilterNode {
  refuseSetOperator(name, op, opToken, '= or !=');
  const o = operands[0]!;
  const value = o.text.toLowerCase();
  if (value !== 'true' && value !== 'false') throw badOperand(o, op, 'true or false');
  return { kind: 'config_drift', value: value === 'true' };
}

/** A field of one value takes no `in (…)`. */
function refuseSetOperator(
  name: string,
  op: Operator,
  opToken: Token,
  expected: string,
): asserts op is Exclude<Operator, 'in' | 'not in'> {
  if (op === 'in' || op === 'not in') {
    throw syntaxError(
      opToken.column,
      `'${op}' cannot be used with ${name}; use ${expected}`,
      expected,
      `'${op}'`,
    );
  }
}

function badOperand(o: Operand, op: Operator, expected: string): FleetError {
  return syntaxError(
    o.column,
    `expected ${expected} after '${op}', found '${o.text}'`,
    expected,
    `'${o.text}'`,
  );
}

function status(o: Operand): DeviceStatus {
  const value = o.text.toLowerCase();
  const known = DEVICE_STATUSES.find((s) => s === value);
  if (known) return known;
  const expected = DEVICE_STATUSES.join(', ');
  throw syntaxError(
    o.column,
    `unknown status '${o.text}'; expected one of ${expected}`,
    expected,
    `'${o.text}'`,
  );
}

const EXACT = (key: string): KeyRange => ({
  lower: { key, inclusive: true },
  upper: { key, inclusive: true },
});

function versionRange(o: Operand): KeyRange {
  const range = parseRange(o.text);
  if (range) {
    return {
      lower: range.lower && { key: keyOf(range.lower), inclusive: true },
      upper: range.upper && { key: keyOf(range.upper), inclusive: false },
    };
  }
  const version = parseVersionLenient(o.text);
  if (version) return EXACT(keyOf(version));
  const expected = 'a version (2.2.0) or a range (^2.1.0, ~2.1.0, 2.x)';
  throw syntaxError(o.column, `expected ${expected}, found '${o.text}'`, expected, `'${o.text}'`);
}

function orderRange(op: OrderOp, o: Operand): KeyRange {
  const version = parseVersionLenient(o.text);
  if (!version) {
    const expected = 'a version (2.2.0)';
    const message =
      parseRange(o.text) !== undefined
        ? `a range can only be used with =, != or in; compare with a version such as 2.2.0, found '${o.text}'`
        : `expected ${expected} after '${op}', found '${o.text}'`;
    throw syntaxError(o.column, message, expected, `'${o.text}'`);
  }
  const bound = { key: keyOf(version), inclusive: op === '<=' || op === '>=' };
  return op === '<' || op === '<=' ? { lower: null, upper: bound } : { lower: bound, upper: null };
}

function time(field: TimeField, op: Operator, opToken: Token, o: Operand): FilterNode {
  if (op === 'in' || op === 'not in') {
    const expected = '<, <=, >, >=, = or !=';
    throw syntaxError(
      opToken.column,
      `'${op}' cannot be used with ${field}; use ${expected}`,
      expected,
      `'${op}'`,
    );
  }
  const never = o.ago === undefined && o.text.toLowerCase() === 'never';
  if (isOrder(op)) {
    if (o.ago !== undefined) return { kind: 'time', field, op, value: { kind: 'relative', ms: o.ago } };
    const instant = never ? undefined : parseInstant(o.text);
    if (instant) return { kind: 'time', field, op, value: { kind: 'absolute', ms: instant.ms } };
    const message = never ? `'never' can only be used with = or !=` : `expected ${TIME_HELP} after '${op}'`;
    throw syntaxError(o.column, `${message}, found '${o.text}'`, TIME_HELP, `'${o.text}'`);
  }
  if (never && field === 'last_seen') return { kind: 'never_seen' };
  const instant = o.ago === undefined ? parseInstant(o.text) : undefined;
  if (instant?.dateOnly) {
    const from = { kind: 'absolute', ms: instant.ms } as const;
    const to = { kind: 'absolute', ms: instant.ms + DAY } as const;
    return {
      kind: 'and',
      children: [
        { kind: 'time', field, op: '>=', value: from },
        { kind: 'time', field, op: '<', value: to },
      ],
    };
  }
  const expected = field === 'last_seen' ? `'never' or a date (2024-10-20)` : 'a date (2024-10-20)';
  const message = `'${op}' on ${field} takes ${expected}, found '${o.text}'; compare times with <, <=, >, >=`;
  throw syntaxError(o.column, message, expected, `'${o.text}'`);
}

/** Parses a filter; undefined for an empty (or all-whitespace) filter, which matches every device. */
export function parseFilter(text: string): FilterNode | undefined {
  const tokens = tokenize(text);
  if (tokens[0]!.type === 'end') return undefined;
  const parser = new Parser(tokens);
  const node = parser.or(0);
  if (parser.peek().type !== 'end') throw unexpected(parser.peek(), "'and', 'or' or end of input");
  return node;
}
