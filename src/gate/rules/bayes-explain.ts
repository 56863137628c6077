/**
 * `gate --explain` for a `bayes` round, pure: the order seed, the probability at each look, the paired re-runs,
 * where it stopped. Held-out tasks appear by id and number only.
 */
import type { GateSetup, Look } from "./bayes-core.ts";

export interface BayesRound {
  setup: GateSetup;
  looks: readonly Look[];
  reason: string;
  extraBudget: number;
  decided: boolean;
  stage: string | null;
  testRuns: number;
  infraErrors: number;
  pGood: number | null;
  pBad: number | null;
  expectedGain: number | null;
  /** First-pass runs (`candidate`) and paired re-runs (`pair`, trial: the pair's index). */
  results: readonly {
    kind: "candidate" | "pair";
    taskId: string;
    trial: number;
    reward: number | null;
    incumbentReward: number | null;
  }[];
  /** The gate's other reasons (the regression suite's). */
  alsoReasons: readonly string[];
}

const pct = (x: number) => `${Math.round(x * 100)}%`;
const p3 = (x: number | null | undefined) => (x === null || x === undefined ? "n/a" : x.toFixed(3));

const STAGES: Record<string, string> = {
  train: "on the train evidence alone, before any held-out run",
  look: "at an early look (a clear loser)",
  full: "after the full pass",
  extra: "after the paired re-runs",
  rerun: "after the paired re-runs",
  infra: "refused: too many infrastructure errors",
  file_guard: "at the file guard",
  load_check: "at the load check",
};

export const stageText = (stage: string | null): string => STAGES[stage ?? ""] ?? stage ?? "?";

export function bayesLines(r: BayesRound): string[] {
  const { setup } = r;
  const g = setup.params;
  const lines: string[] = [];
  const histRuns = Object.values(setup.histTest).reduce((n, c) => n + c.s + c.f, 0);
  lines.push(
    `  ${setup.testIds.length} held-out tasks, run in the order of order seed ${setup.orderSeed}, ${setup.trials} trial(s) each;` +
      ` the incumbent's history held ${histRuns.toFixed(1)} weighted run(s) of them.`,
  );
  lines.push(
    `  Prior: ${pct(g.wGood)} of edits improve, ${pct(g.wBad)} harm; accept above P(improvement) ${g.tau}; stop a loser below ${g.futility}; train evidence weight ${g.trainWeight}.`,
  );
  const trainSeen = Object.values(setup.trainCandidate).filter((x) => x !== null).length;
  for (const look of r.looks) {
    const where =
      look.fraction === 0
        ? `Train evidence (${trainSeen} train tasks, no held-out run)`
        : `Look at ${pct(look.fraction)} (${look.tasksRun} held-out tasks)`;
    lines.push(`  ${where}: P(improvement) ${p3(look.pGood)}, P(harm) ${p3(look.pBad)}.`);
  }
  const pairs = r.results.filter((x) => x.kind === "pair");
  if (pairs.length > 0) {
    const byTask = new Map<string, { c: number; i: number; n: number }>();
    for (const x of pairs) {
      const t = byTask.get(x.taskId) ?? { c: 0, i: 0, n: 0 };
      t.c += x.reward ?? 0;
      t.i += x.incumbentReward ?? 0;
      t.n += 1;
      byTask.set(x.taskId, t);
    }
    const parts = [...byTask].map(([id, t]) => `${id} candidate ${t.c}/${t.n} vs incumbent ${t.i}/${t.n}`);
    lines.push(`  Paired re-runs (${pairs.length} pair(s), budget ${r.extraBudget} runs): ${parts.join("; ")}.`);
  }
  lines.push(
    `  Stopped ${stageText(r.stage)}. Held-out runs spent: ${r.testRuns} (${r.infraErrors} infrastructure error(s)).`,
  );
  if (r.decided) {
    lines.push(
      `  Final: P(improvement) ${p3(r.pGood)}, P(harm) ${p3(r.pBad)}, expected gain ${r.expectedGain == null ? "n/a" : r.expectedGain.toFixed(4)}; ${r.reason}.`,
    );
    for (const x of r.alsoReasons) if (!x.startsWith("held-out")) lines.push(`  Also: ${x}.`);
  }
  const first = r.results.filter((x) => x.kind === "candidate");
  if (first.length > 0) {
    const row = first.map((x) => {
      const h = setup.histTest[x.taskId];
      const inc = h ? `${h.s.toFixed(1)}/${(h.s + h.f).toFixed(1)}` : "0/0";
      return `${x.taskId}${setup.trials > 1 ? `#${x.trial}` : ""}=${x.reward === null ? "infra" : x.reward} (incumbent ${inc})`;
    });
    lines.push(`  Candidate's held-out results, in run order: ${row.join(", ")}.`);
  }
  return lines;
}
