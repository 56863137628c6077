/**
 * `gate --explain <iteration>`: a journaled decision in words. Held-out tasks appear by id and number only.
 */
import type { GateDecisionRow, GateRecordStore, GateResultRow } from "../journal/stores.ts";
import type { GateSetup, Look } from "./rule/bayes.ts";

const pct = (x: number) => `${Math.round(x * 100)}%`;
const p3 = (x: number | null | undefined) => (x === null || x === undefined ? "n/a" : x.toFixed(3));

const STAGES: Record<string, string> = {
  train: "on the train evidence alone, before any held-out run",
  look: "at an early look (a clear loser)",
  full: "after the full pass",
  extra: "after the paired re-runs",
  infra: "refused: too many infrastructure errors",
  file_guard: "at the file guard",
  load_check: "at the load check",
};

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

export function explainDecision(d: GateDecisionRow, results: GateResultRow[]): string {
  const lines: string[] = [];
  const verdict =
    d.status !== "decided"
      ? "not decided yet (interrupted; the next gate resumes it)"
      : d.accept
        ? "accepted"
        : "rejected";
  lines.push(`Iteration ${d.iteration} (run ${d.runId}): ${verdict} by the ${d.rule} rule.`);
  const details = d.details as {
    looks?: unknown;
    setup?: GateSetup;
    orderSeed?: number;
    pGood?: number | null;
    pBad?: number | null;
    expectedGain?: number | null;
  };
  const info = (details.looks ?? {}) as { looks?: Look[]; reason?: string; pairs?: number; extraBudget?: number };
  if (d.rule !== "bayes") {
    lines.push(`  val_score ${d.valScore === null ? "n/a" : d.valScore.toFixed(4)}; ${info.reason ?? ""}`);
    lines.push(`  Held-out runs spent: ${d.testRuns}.`);
    return `${lines.join("\n")}\n`;
  }
  const setup = details.setup as GateSetup;
  const g = setup.params;
  const histRuns = Object.values(setup.histTest).reduce((n, c) => n + c.s + c.f, 0);
  lines.push(
    `  ${setup.testIds.length} held-out tasks, run in the order of order seed ${details.orderSeed}, ${setup.trials} trial(s) each;` +
      ` the incumbent's history held ${histRuns.toFixed(1)} weighted run(s) of them.`,
  );
  lines.push(
    `  Prior: ${pct(g.wGood)} of edits improve, ${pct(g.wBad)} harm; accept above P(improvement) ${g.tau}; stop a loser below ${g.futility}; train evidence weight ${g.trainWeight}.`,
  );
  const trainSeen = Object.values(setup.trainCandidate).filter((r) => r !== null).length;
  for (const look of info.looks ?? []) {
    const where =
      look.fraction === 0
        ? `Train evidence (${trainSeen} train tasks, no held-out run)`
        : `Look at ${pct(look.fraction)} (${look.tasksRun} held-out tasks)`;
    lines.push(`  ${where}: P(improvement) ${p3(look.pGood)}, P(harm) ${p3(look.pBad)}.`);
  }
  const pairs = results.filter((r) => r.kind === "pair");
  if (pairs.length > 0) {
    const byTask = new Map<string, { c: number; i: number; n: number }>();
    for (const r of pairs) {
      const t = byTask.get(r.taskId) ?? { c: 0, i: 0, n: 0 };
      t.c += r.reward ?? 0;
      t.i += r.incumbentReward ?? 0;
      t.n += 1;
      byTask.set(r.taskId, t);
    }
    const parts = [...byTask].map(([id, t]) => `${id} candidate ${t.c}/${t.n} vs incumbent ${t.i}/${t.n}`);
    lines.push(
      `  Paired re-runs (${pairs.length} pair(s), budget ${info.extraBudget ?? 0} runs): ${parts.join("; ")}.`,
    );
  }
  lines.push(
    `  Stopped ${STAGES[d.stage ?? ""] ?? d.stage ?? "?"}. Held-out runs spent: ${d.testRuns} (${d.infraErrors} infrastructure error(s)).`,
  );
  if (d.status === "decided") {
    lines.push(
      `  Final: P(improvement) ${p3(details.pGood)}, P(harm) ${p3(details.pBad)}, expected gain ${details.expectedGain == null ? "n/a" : details.expectedGain.toFixed(4)}; ${info.reason ?? ""}.`,
    );
    const out = (d.output as { output?: { reasons?: string[] } } | null)?.output;
    for (const r of out?.reasons ?? []) if (!r.startsWith("held-out")) lines.push(`  Also: ${r}.`);
  }
  const first = results.filter((r) => r.kind === "candidate");
  if (first.length > 0) {
    const row = first.map((r) => {
      const h = setup.histTest[r.taskId];
      const inc = h ? `${h.s.toFixed(1)}/${(h.s + h.f).toFixed(1)}` : "0/0";
      return `${r.taskId}${setup.trials > 1 ? `#${r.trial}` : ""}=${r.reward === null ? "infra" : r.reward} (incumbent ${inc})`;
    });
    lines.push(`  Candidate's held-out results, in run order: ${row.join(", ")}.`);
  }
  return `${lines.join("\n")}\n`;
}
