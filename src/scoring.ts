/**
 * How rewards become scores, in one place: the pass rule, means, the 4-decimal precision results.tsv keeps,
 * and which score is the best. Pure, so the machine may import it.
 */

/** A task passes at reward ≥ 0.5, as in the original. */
export const PASS_THRESHOLD = 0.5;

export const passes = (reward: number | null | undefined): boolean =>
  typeof reward === "number" && reward >= PASS_THRESHOLD;

/** Mean reward with infrastructure errors (null) excluded; null when nothing is left. */
export function meanReward(results: Record<string, number | null>): number | null {
  const values = Object.values(results).filter((r): r is number => typeof r === "number");
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

/** results.tsv keeps 4 decimals, so scores are compared at that precision (ties pass). */
export const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/** A score as results.tsv and every report print it. */
export const formatScore = (x: number): string => x.toFixed(4);

/** The best of recorded scores (results.tsv rows); null when none is recorded. */
export function bestValScore(rows: readonly { valScore: number }[]): number | null {
  return rows.length === 0 ? null : Math.max(...rows.map((r) => r.valScore));
}

/** The best score after an iteration: an accepted, measured score replaces a lower best. */
export function nextBest(best: number | null, valScore: number | null, accepted: boolean): number | null {
  return accepted && valScore !== null && (best === null || valScore > best) ? valScore : best;
}
