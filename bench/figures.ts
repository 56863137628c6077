/** What the benches share to turn timings into figures. */

/** The p-th percentile of sorted values (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Milliseconds to two decimals. */
export const round = (ms: number) => Math.round(ms * 100) / 100;

/** p50 and p99 of calls made directly and of the same calls made another way (`name`), and what that way adds. */
export function latencyFigures(direct: number[], other: number[], name: string): Record<string, number> {
  const d = [...direct].sort((a, b) => a - b);
  const o = [...other].sort((a, b) => a - b);
  return {
    direct_p50_ms: round(percentile(d, 50)),
    direct_p99_ms: round(percentile(d, 99)),
    [`${name}_p50_ms`]: round(percentile(o, 50)),
    [`${name}_p99_ms`]: round(percentile(o, 99)),
    added_p50_ms: round(percentile(o, 50) - percentile(d, 50)),
    added_p99_ms: round(percentile(o, 99) - percentile(d, 99)),
  };
}
