/**
 * The morning's numbers in words, each stated once: why an edit was accepted, what the sealed holdout says
 * about the night (from its interval). Pure: the log, learnings, results.tsv,
 * `status`, the run's last line, the report and `view` all say it with these functions.
 */
import type { GateOutput } from "./contracts.ts";

const signed = (x: number): string => `${x >= 0 ? "+" : ""}${x.toFixed(4)}`;

/** A paired improvement and its 95% interval (the sealed holdout's, or a gate's when it records one). */
export interface Improvement {
  diff: number;
  low: number;
  high: number;
}

export const intervalWords = (i: Improvement): string =>
  `${signed(i.diff)}, 95% interval ${signed(i.low)} to ${signed(i.high)}`;

/**
 * What a gate journals beside the common fields: the improvement with its interval and the one-line "why it
 * won" of the rule that raced several candidates. Read when present; today's rules leave them out.
 */
export type AcceptedGate = Pick<GateOutput, "valScore" | "suitePassed" | "suiteTotal"> &
  Partial<Pick<GateOutput, "pGood" | "testRuns" | "stage" | "why">> & {
    improvement?: Improvement | GateOutput["improvement"];
  };

/** The gate's paired first pass (its mean over its tasks) as an interval to put in words. */
const asInterval = (i: Improvement | NonNullable<GateOutput["improvement"]>): Improvement =>
  "diff" in i ? i : { diff: i.mean, low: i.low, high: i.high };

/** Where a gate stopped, in words. */
export const STAGE_WORDS: Record<string, string> = {
  train: "on the train evidence",
  look: "at an early look",
  full: "after the full pass",
  extra: "after the paired re-runs",
  infra: "on infrastructure errors",
  file_guard: "at the file guard",
  hardcode: "at the hard-coding check",
  load_check: "at the load check",
};

/**
 * An acceptance's reason in one line: how sure the gate was, the score against the best before, the suite,
 * and the interval where the gate recorded one. An accepted score that is not above the best says what the
 * decision rested on instead.
 */
export function acceptanceReason(gate: AcceptedGate, bestBefore: number | null): string {
  const judged =
    typeof gate.pGood === "number"
      ? `P(improvement) ${gate.pGood.toFixed(3)} with ${gate.testRuns ?? 0} held-out run(s), `
      : "";
  const score = gate.valScore === null ? "n/a" : gate.valScore.toFixed(4);
  const parts = [`${judged}val_score ${score} (best before ${bestBefore?.toFixed(4) ?? "none"})`];
  if (gate.improvement) parts.push(`improvement ${intervalWords(asInterval(gate.improvement))}`);
  parts.push(`suite ${gate.suitePassed}/${gate.suiteTotal} passed`);
  let line = parts.join(", ");
  if (gate.valScore !== null && bestBefore !== null && gate.valScore <= bestBefore && typeof gate.pGood === "number") {
    const where = gate.stage ? ` ${STAGE_WORDS[gate.stage] ?? `at ${gate.stage}`}` : "";
    line += `; val_score not above the best: accepted on the per-task paired evidence${where}`;
  }
  if (gate.why) line += `; ${gate.why}`;
  return line.replace(/\s+/g, " ").trim();
}

export type HoldoutVerdict = "improved" | "no detectable change" | "worse" | "too small to tell";

/** The sealed holdout's score as the journal keeps it (src/gate/holdout.ts). */
export interface HoldoutScore extends Improvement {
  tasks: number;
  baseline: number;
  final: number;
}

/**
 * The holdout's verdict from its interval: above zero improved, below zero worse; an interval across zero
 * that still reaches the gain the night claims cannot tell them apart (too small to tell), one that rules
 * that gain out found no detectable change.
 */
export function holdoutVerdict(h: Improvement, claimedGain: number | null): HoldoutVerdict {
  if (h.low > 0) return "improved";
  if (h.high < 0) return "worse";
  if (claimedGain !== null && claimedGain > 0 && h.high >= claimedGain) return "too small to tell";
  return "no detectable change";
}

/** Sealed tasks that would make an interval this noisy narrower than the claimed gain (null: nothing to scale). */
export function tasksToTell(h: HoldoutScore, claimedGain: number | null): number | null {
  const half = (h.high - h.low) / 2;
  if (claimedGain === null || claimedGain <= 0 || half <= 0 || h.tasks <= 0) return null;
  // Rounding noise must not add a task: 80.0000001 is 80.
  return Math.ceil(h.tasks * (half / claimedGain) ** 2 - 1e-9);
}

export interface HoldoutSummary {
  /** null: nothing sealed, or not scored yet. */
  verdict: HoldoutVerdict | null;
  line: string;
  scored: boolean;
}

/** The verdict and its one line, as the last line, `status`, the report and `view` show it. */
export function holdoutSummary(
  h: HoldoutScore | null,
  o: { claimedGain: number | null; sealedTasks: number },
): HoldoutSummary {
  if (!h) {
    return o.sealedTasks > 0
      ? {
          verdict: null,
          scored: false,
          line: `${o.sealedTasks} task(s) sealed away; scored once, at the end of the run`,
        }
      : {
          verdict: null,
          scored: false,
          line: "none sealed (holdout_fraction is 0, or the benchmark has fewer than 60 tasks): every score was seen by the gate",
        };
  }
  const verdict = holdoutVerdict(h, o.claimedGain);
  let line = `${verdict}: ${h.baseline.toFixed(4)} → ${h.final.toFixed(4)} (${intervalWords(h)}) on ${h.tasks} sealed task(s) no gate ever saw`;
  if (verdict === "too small to tell" && o.claimedGain !== null) {
    const need = tasksToTell(h, o.claimedGain);
    line += `; the interval spans the night's claimed ${signed(o.claimedGain)}`;
    if (need !== null && need > h.tasks) {
      line += `: about ${need} sealed tasks (or ${Math.ceil(need / h.tasks)} trials each) would tell a gain that size from none`;
    }
  }
  return { verdict, line, scored: true };
}
