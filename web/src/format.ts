/** Times in the operator's own zone (the browser's), device-local times where they matter, and numbers. */

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
const number = new Intl.NumberFormat();

export const operatorZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function formatTime(iso: string | null | undefined, seconds = false): string {
  if (!iso) return '—';
  return (seconds ? dateTimeSeconds : dateTime).format(new Date(iso));
}

/** The same instant on the device's wall clock, e.g. "Oct 20, 2024, 10:23 AM EDT". */
export function formatInZone(iso: string | null | undefined, timeZone: string | null | undefined): string {
  if (!iso) return '—';
  if (!timeZone) return formatTime(iso);
  try {
    // dateStyle/timeStyle cannot be combined with timeZoneName: the fields are spelled out instead.
    return new Intl.DateTimeFormat(undefined, {
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: 'numeric',
      minute: '2-digit',
      timeZone,
      timeZoneName: 'short',
    }).format(new Date(iso));
  } catch {
    return formatTime(iso);
  }
}

export function formatAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 0) return 'in the future';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

export const formatNumber = (n: number | null | undefined) =>
  n === null || n === undefined ? '—' : number.format(n);

export function formatPercent(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined || Number.isNaN(n) ? '—' : `${n.toFixed(digits)}%`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** The online share of the devices that count (decommissioned ones are out of the fleet), as the CLI does. */
export function onlineShare(byStatus: Record<string, number>, total: number): number | null {
  const active = total - (byStatus.decommissioned ?? 0);
  return active === 0 ? null : (100 * (byStatus.online ?? 0)) / active;
}
