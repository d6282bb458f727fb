/**
 * Cron expressions for recurring maintenance windows: `minute hour day-of-month month day-of-week`.
 * A window opens at most once a day, so minute and hour are single numbers; the date fields take the
 * usual `*`, lists, ranges, steps and names (`0 2 * * mon-fri`, `30 1 1,15 * *`, `0 3 * jan-mar sun`).
 * As in Vixie cron, when both day fields are restricted a date matches if EITHER matches.
 */
import { FleetError } from '../errors.js';

export interface CronSchedule {
  minute: number;
  hour: number;
  daysOfMonth: ReadonlySet<number>;
  months: ReadonlySet<number>;
  /** 0 = Sunday … 6 = Saturday */
  daysOfWeek: ReadonlySet<number>;
  /** Both day fields restricted: either one matching is enough. */
  eitherDay: boolean;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldSpec {
  label: string;
  min: number;
  max: number;
  names?: string[];
  namesFrom?: number;
}

const invalid = (message: string) => new FleetError('VALIDATION', message);

function value(text: string, f: FieldSpec): number {
  const named = f.names?.indexOf(text.toLowerCase()) ?? -1;
  const n = named >= 0 ? named + (f.namesFrom ?? 0) : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= f.min && n <= f.max)) throw invalid(`${f.label} "${text}" is not in ${f.min}–${f.max}`);
  return n;
}

function field(text: string, f: FieldSpec): Set<number> {
  const out = new Set<number>();
  for (const item of text.split(',')) {
    const [range = '', stepText] = item.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1)
      throw invalid(`${f.label} step "${stepText}" must be a positive integer`);
    let from: number;
    let to: number;
    if (range === '*') [from, to] = [f.min, f.max];
    else if (range.includes('-')) {
      const [a = '', b = ''] = range.split('-');
      [from, to] = [value(a, f), value(b, f)];
      if (from > to) throw invalid(`${f.label} range "${range}" runs backwards`);
    } else [from, to] = [value(range, f), stepText === undefined ? value(range, f) : f.max];
    for (let n = from; n <= to; n += step) out.add(n);
  }
  return out;
}

function single(text: string, f: FieldSpec): number {
  if (!/^\d+$/.test(text)) {
    throw invalid(`${f.label} must be a single number, found "${text}" (a window opens at most once a day)`);
  }
  return value(text, f);
}

export function parseCron(expr: string): CronSchedule {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) {
    throw invalid(`"${expr}" must have 5 fields: minute hour day-of-month month day-of-week`);
  }
  const [minute, hour, dom, month, dow] = parts as [string, string, string, string, string];
  const daysOfWeek = field(dow, { label: 'day-of-week', min: 0, max: 7, names: DAYS });
  if (daysOfWeek.delete(7)) daysOfWeek.add(0); // 7 is Sunday too
  return {
    minute: single(minute, { label: 'minute', min: 0, max: 59 }),
    hour: single(hour, { label: 'hour', min: 0, max: 23 }),
    daysOfMonth: field(dom, { label: 'day-of-month', min: 1, max: 31 }),
    months: field(month, { label: 'month', min: 1, max: 12, names: MONTHS, namesFrom: 1 }),
    daysOfWeek,
    eitherDay: !dom.startsWith('*') && !dow.startsWith('*'),
  };
}

/** Whether the schedule fires on this calendar date (month 1–12, weekday 0 = Sunday). */
export function cronMatchesDate(c: CronSchedule, month: number, day: number, weekday: number): boolean {
  if (!c.months.has(month)) return false;
  const dom = c.daysOfMonth.has(day);
  const dow = c.daysOfWeek.has(weekday);
  return c.eitherDay ? dom || dow : dom && dow;
}

/** Whether the date fields match any date of a 28-year calendar cycle (catches `0 2 31 2 *`). */
export function cronEverMatches(c: CronSchedule): boolean {
  const first = Date.UTC(2000, 0, 1);
  for (let i = 0; i < 366 * 28; i++) {
    const d = new Date(first + i * 86_400_000);
    if (cronMatchesDate(c, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCDay())) return true;
  }
  return false;
}
