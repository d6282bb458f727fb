/**
 * A label's values capped to a fixed number: the largest groups keep their own value, the rest are summed
 * under `other`. A fleet with 40,000 firmware builds must not become 40,000 time series in Prometheus.
 */
export const OTHER_LABEL = 'other';

export function boundedLabels(
  groups: ReadonlyArray<{ value: string | null; count: number }>,
  max: number,
  none = 'none',
): Array<{ value: string; count: number }> {
  const sorted = [...groups].sort(
    (a, b) => b.count - a.count || (a.value ?? '').localeCompare(b.value ?? ''),
  );
  const kept = sorted.slice(0, max).map((g) => ({ value: g.value ?? none, count: g.count }));
  const rest = sorted.slice(max).reduce((sum, g) => sum + g.count, 0);
  // A real value named "other" is folded into the same series rather than shown twice.
  const merged = new Map<string, number>();
  for (const g of kept) merged.set(g.value, (merged.get(g.value) ?? 0) + g.count);
  if (rest > 0) merged.set(OTHER_LABEL, (merged.get(OTHER_LABEL) ?? 0) + rest);
  return [...merged].map(([value, count]) => ({ value, count }));
}
