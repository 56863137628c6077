/**
 * `gate --explain` for a paired round, pure: what the rule knew (the reward model, the drift check, the
 * share of the night's budget), and for each arm where it stopped and on what evidence. Ids and numbers
 * only: no task content, no held-out task id.
 */
import type { PairedState } from "./paired-types.ts";
import { describeRewardModel } from "./reward-model.ts";
import type { ArmVerdict, Decision } from "./types.ts";

const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(4)}`;
const p3 = (x: number | undefined) => (x === undefined ? "n/a" : x.toFixed(3));

function armLines(a: ArmVerdict): string[] {
  const f = a.figures;
  const lines = [`  ${a.arm}: ${a.verdict} at ${a.stage} — ${a.reason}.`];
  if (f.trainPImproved !== undefined) lines.push(`    train screen: P(mean improved) ${p3(f.trainPImproved)}.`);
  if (f.logE !== undefined) {
    lines.push(
      `    held-out: e-value e^${f.logE.toFixed(2)} against the bar e^${p3(f.threshold)}; P(mean improved) ${p3(f.pImproved)}; expected change ${signed(f.meanDelta ?? 0)} ± ${(f.sdDelta ?? 0).toFixed(4)}; ${f.tasksPaired ?? 0} task(s) paired, ${a.runs} run(s) of this arm.`,
    );
  }
  if (a.valScore !== null) lines.push(`    val_score (first pass): ${a.valScore.toFixed(4)}.`);
  if (a.improvement) {
    const i = a.improvement;
    lines.push(
      `    paired first pass: ${signed(i.mean)} over ${i.tasks} task(s), 95% interval ${signed(i.low)} to ${signed(i.high)}.`,
    );
  }
  return lines;
}

export function explainRound(state: PairedState, decision: Decision): string {
  const { setup, plan } = state;
  const d = state.drift;
  const lines = [
    `Paired rule: ${setup.candidates.length} candidate(s), ${plan.raced.length} raced on ${setup.taskIds.length} held-out task(s) against the incumbent, in one batch per look.`,
    `  Rewards: ${describeRewardModel(setup.model)}.`,
    `  Drift check: the incumbent's fresh runs are ${signed(d.shift)} from what its history predicts (z ${d.z.toFixed(2)}); the history kept ${(d.weight * 100).toFixed(0)}% of its weight.`,
    `  Night budget: this round could use alpha ${setup.alpha.toExponential(2)} and used ${decision.alphaUsed.toExponential(2)}; each raced arm had to reach an e-value of ${plan.raced.length}/alpha.`,
    `  Looks: ${state.looks.length}; held-out runs ${decision.heldOutRuns} of ${plan.maxRuns} allowed; infrastructure errors ${decision.infraErrors}.`,
    `  Decision: ${decision.reason}.`,
  ];
  for (const a of decision.arms) lines.push(...armLines(a));
  return `${lines.join("\n")}\n`;
}
