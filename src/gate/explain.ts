/**
 * `gate --explain <iteration>`: a journaled decision in words. A round driven through the rule seam is
 * replayed from its journaled setup and runs (the same state, hence the same decision) and told by its rule;
 * each candidate of a race gets its hypothesis, where it stopped and why. Held-out tasks appear by id and
 * number only.
 */
import type { GateDecisionRow, GateRecordStore, GateResultRow, GateRunRow } from "../journal/stores.ts";
import type { RoundCandidate } from "./round.ts";
import type { GateSetup, Look } from "./rules/bayes-core.ts";
import { bayesLines } from "./rules/bayes-explain.ts";
import { seamRule } from "./rules/registry.ts";
import { replay } from "./rules/types.ts";

/** The decision of `iteration`, from the given run or the newest one that gated it. */
export function findDecision(
  records: Pick<GateRecordStore, "gateDecision" | "gateDecisions">,
  iteration: number,
  runId?: string,
): GateDecisionRow | undefined {
  if (runId) return records.gateDecision(runId, iteration);
  return records
    .gateDecisions()
    .filter((d) => d.iteration === iteration)
    .at(-1);
}

const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(4)}`;

/** Each candidate of a race (or one with a stated hypothesis): what it tried and where it stopped. */
function candidateLines(candidates: readonly RoundCandidate[]): string[] {
  if (candidates.length < 2 && !candidates.some((c) => c.hypothesis)) return [];
  const lines = [`  Candidates (${candidates.length}):`];
  const winner = candidates.find((c) => c.verdict === "winner");
  const beat = candidates.filter((c) => c.verdict === "runner-up");
  if (winner)
    lines.push(
      `  ${winner.id} won: ${winner.reason}${beat.length ? `; ${beat.map((c) => c.id).join(", ")} beat the incumbent too, and race the new champion next round` : ""}.`,
    );
  for (const c of candidates) {
    lines.push(`  ${c.id}: ${c.verdict}, stopped at ${c.stage}: ${c.reason}.`);
    if (c.regatedFrom !== undefined) lines.push(`    a runner-up of iteration ${c.regatedFrom}, re-gated here`);
    if (c.hypothesis) lines.push(`    hypothesis: ${c.hypothesis}${c.pattern ? ` (pattern: ${c.pattern})` : ""}`);
    if (c.valScore !== null) lines.push(`    val_score (first pass): ${c.valScore.toFixed(4)}.`);
    if (c.improvement)
      lines.push(
        `    paired first pass: ${signed(c.improvement.mean)} over ${c.improvement.tasks} task(s), 95% interval ${signed(c.improvement.low)} to ${signed(c.improvement.high)}.`,
      );
  }
  return lines;
}

function nightLine(d: GateDecisionRow): string | null {
  const night = d.details.night as { budget?: number; spentBefore?: number } | undefined;
  const used = d.details.alphaUsed;
  if (!night || typeof night.budget !== "number" || typeof used !== "number") return null;
  const pct = (x: number) => `${((x / (night.budget ?? 1)) * 100).toFixed(1)}%`;
  const before = night.spentBefore ?? 0;
  return `  The night's error budget: ${night.budget} expected false acceptances; the rounds before this one spent ${before.toExponential(2)} (${pct(before)}), this round ${used.toExponential(2)} (${pct(used)}).`;
}

/** A round driven through the seam: replayed from its setup and runs, told by its rule. */
function seamLines(d: GateDecisionRow, runs: readonly GateRunRow[]): string[] {
  const entry = seamRule(d.rule);
  const lines: string[] = [];
  if (entry && d.details.setup !== undefined) {
    const state = replay(entry.rule, d.details.setup, runs);
    const action = entry.rule.next(state);
    if (action.kind === "decide") {
      const won = d.details.winner;
      const decision =
        won === undefined ? action.decision : { ...action.decision, winner: (won as string | null) ?? null };
      lines.push(...entry.explain(state, decision, runs).trimEnd().split("\n"));
    } else {
      lines.push(`  In progress: ${runs.length} held-out run(s) journaled; the next gate resumes the round.`);
    }
  }
  const night = nightLine(d);
  if (night) lines.push(night);
  lines.push(...candidateLines((d.details.candidates as RoundCandidate[] | undefined) ?? []));
  const reasons = (d.output as { output?: { reasons?: string[] } } | null)?.output?.reasons ?? [];
  for (const r of reasons) if (!r.startsWith("held-out")) lines.push(`  Also: ${r}.`);
  return lines;
}

/** A bayes decision journaled before the rule seam (its results in the old table). */
function legacyBayesLines(d: GateDecisionRow, results: GateResultRow[]): string[] {
  const details = d.details as {
    looks?: { looks?: Look[]; reason?: string; extraBudget?: number };
    setup?: GateSetup;
    orderSeed?: number;
    pGood?: number | null;
    pBad?: number | null;
    expectedGain?: number | null;
  };
  const info = details.looks ?? {};
  const setup = details.setup as GateSetup;
  return bayesLines({
    setup: { ...setup, orderSeed: details.orderSeed ?? setup.orderSeed },
    looks: info.looks ?? [],
    reason: info.reason ?? "",
    extraBudget: info.extraBudget ?? 0,
    decided: d.status === "decided",
    stage: d.stage,
    testRuns: d.testRuns,
    infraErrors: d.infraErrors,
    pGood: details.pGood ?? null,
    pBad: details.pBad ?? null,
    expectedGain: details.expectedGain ?? null,
    results,
    alsoReasons: (d.output as { output?: { reasons?: string[] } } | null)?.output?.reasons ?? [],
  });
}

export function explainDecision(
  d: GateDecisionRow,
  results: GateResultRow[],
  runs: readonly GateRunRow[] = [],
): string {
  const verdict =
    d.status !== "decided"
      ? "not decided yet (interrupted; the next gate resumes it)"
      : d.accept
        ? "accepted"
        : "rejected";
  const lines = [`Iteration ${d.iteration} (run ${d.runId}): ${verdict} by the ${d.rule} rule.`];
  if (d.details.seam !== undefined) lines.push(...seamLines(d, runs));
  else if (d.rule === "bayes" && d.details.setup !== undefined) lines.push(...legacyBayesLines(d, results));
  else {
    const info = (d.details.looks ?? {}) as { reason?: string };
    lines.push(`  val_score ${d.valScore === null ? "n/a" : d.valScore.toFixed(4)}; ${info.reason ?? ""}`);
    lines.push(`  Held-out runs spent: ${d.testRuns}.`);
  }
  return `${lines.join("\n")}\n`;
}
