/**
 * The night's figures, read once from the journal's stores for every place that shows them (the run's last
 * line, `status`, the report and `view`), so they agree to the cent: the accepted agent's val_score, the
 * best, the baseline, the sealed holdout's verdict, and one spend total (the holdout's scoring included)
 * with the budget beside it.
 */
import { holdoutOf } from "../gate/holdout.ts";
import { pinnedBaseline, pinnedSplit } from "../journal/pins.ts";
import type { RunRow, Stores } from "../journal/stores.ts";
import { type HoldoutSummary, holdoutSummary } from "../verdicts.ts";

export interface NightSpend {
  /** Every LLM call journaled under the run: coding agent, train and gate runs, the holdout's scoring. */
  totalUsd: number;
  codingUsd: number;
  agentUsd: number;
  budgetUsd: number | null;
}

export interface Night {
  runId: string;
  status: string;
  generation: number;
  baselineValScore: number | null;
  /** The accepted agent's val_score: the generation's last acceptance up to this run, else the baseline's. */
  valScore: number | null;
  /** The best val_score the run knew (its starting best included). */
  bestValScore: number | null;
  accepted: number;
  rejected: number;
  holdout: HoldoutSummary;
  spend: NightSpend;
}

export type NightStores = Pick<Stores, "runs" | "ledger" | "pins" | "gateRecords">;

/** The night of one run. */
export function readNight(stores: NightStores, run: RunRow): Night {
  const { runs, ledger, pins } = stores;
  const baseline = pinnedBaseline(pins)?.valScore ?? null;
  // The runs of the generation up to this one: an earlier run's acceptance is the agent this one started from.
  const upTo = runs.runs(run.generation);
  const lastAccepted = upTo
    .slice(0, upTo.findIndex((r) => r.id === run.id) + 1)
    .flatMap((r) => runs.iterations(r.id))
    .filter((i) => i.outcome === "accepted" && i.valScore !== null)
    .at(-1);
  const valScore = lastAccepted?.valScore ?? baseline;
  const claimedGain = valScore !== null && baseline !== null ? valScore - baseline : null;
  const spend = ledger.spend(run.id);
  const budget = (run.config as { budget_usd?: number | null } | null)?.budget_usd ?? null;
  return {
    runId: run.id,
    status: run.status,
    generation: run.generation,
    baselineValScore: baseline,
    valScore,
    bestValScore: run.bestValScore ?? valScore,
    accepted: run.accepted,
    rejected: run.rejected,
    holdout: holdoutSummary(holdoutOf(stores, run.id), {
      claimedGain,
      sealedTasks: pinnedSplit(pins)?.holdout.length ?? 0,
    }),
    spend: {
      totalUsd: spend.totalUsd,
      codingUsd: spend.byRole.coding,
      agentUsd: spend.byRole.agent,
      budgetUsd: budget,
    },
  };
}

export const usd = (v: number): string => `$${v.toFixed(2)}`;

/** "$1.61 of $20.00": the one spend total, with the budget beside it. */
export const spendWords = (s: NightSpend): string =>
  `${usd(s.totalUsd)}${s.budgetUsd === null ? " (no budget_usd)" : ` of ${usd(s.budgetUsd)}`}`;

const score = (v: number | null): string => (v === null ? "n/a" : v.toFixed(4));

/** The night in one line: what the run's last line, the report's first card and `view` lead with. */
export function nightLine(n: Night): string {
  return (
    `val_score ${score(n.valScore)} (best ${score(n.bestValScore)}, baseline ${score(n.baselineValScore)}); ` +
    `${n.accepted} accepted, ${n.rejected} rejected; sealed holdout ${n.holdout.line}; spend ${spendWords(n.spend)}`
  );
}
