import { existsSync } from "node:fs";
import type { GateOutput, Improvement } from "../contracts.ts";
import { UserError } from "../errors.ts";
import { explainDecision, findDecision } from "../gate/explain.ts";
import { type GateDeps, type GateStepReport, runGate } from "../gate/gate.ts";
import type { FlakySuiteVerdict } from "../gate/suite.ts";
import { Journal } from "../journal/journal.ts";
import { type GlobalOptions, openExperiment } from "./experiment.ts";
import { type ErrorStyle, presented, type Writable } from "./present.ts";

export interface GateCommandDeps extends Omit<GateDeps, "onStep"> {
  stdout: Writable;
  stderr?: Writable;
}

const pct = (x: number | null): string => (x === null ? "n/a" : `${(x * 100).toFixed(1)}%`);
const verdict = (ok: boolean): string => (ok ? "PASS" : "FAIL");

/** One human line per gate step, in the spirit of the original gating.py. */
export function formatStep(r: GateStepReport): string {
  switch (r.step) {
    case "file_guard":
      return r.passed
        ? "Step 1: file guard ... PASS (only agent/agent.ts changed)"
        : `Step 1: file guard ... FAIL (other files changed: ${r.offending.join(", ")})`;
    case "hardcode":
      return r.passed ? "Step 1b: hard-coding check ... PASS" : `Step 1b: hard-coding check ... FAIL (${r.reason})`;
    case "load_check":
      return r.passed ? "Step 2: load check ... PASS" : `Step 2: load check ... FAIL\n${r.message ?? ""}`;
    case "suite": {
      const v = r.verdict;
      if (v.rate === null) return "Step 3: regression suite ... PASS (empty suite)";
      const infra = v.infraErrors > 0 ? `, ${v.infraErrors} infra error(s) excluded` : "";
      return `Step 3: regression suite ... ${verdict(v.passed)} (${v.passedCount}/${v.total} passed = ${pct(v.rate)}, threshold ${pct(v.threshold)}${infra})`;
    }
    case "test": {
      const v = r.verdict;
      const best = v.previousBest === null ? "none yet" : v.previousBest.toFixed(4);
      const infra = v.infraErrors > 0 ? `, ${v.infraErrors} infra error(s) excluded` : "";
      return `Step 4: full test split ... ${verdict(v.passed)} (val_score ${v.valScore.toFixed(4)} vs best ${best}${infra})`;
    }
    case "round":
      return roundLines(r.output, r.suite);
    case "promotion":
      return r.promoted.length > 0
        ? `Step 5: suite promotion ... ${r.promoted.length} of ${r.candidates} previously failing task(s) promoted: ${r.promoted.join(", ")}`
        : `Step 5: suite promotion ... none (${r.candidates} previously failing task(s) checked)`;
  }
}

const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(4)}`;

/** A paired first-pass improvement with its interval, as the operator reads it. */
export function improvementWords(i: Improvement | null | undefined): string {
  if (!i) return "no paired first pass";
  return `paired first pass ${signed(i.mean)} over ${i.tasks} task(s), 95% interval ${signed(i.low)} to ${signed(i.high)}`;
}

/** A round of a rule driven through the seam: the held-out verdict, each candidate of a race, the suite. */
function roundLines(o: GateOutput, v: FlakySuiteVerdict | null): string {
  const heldOut =
    o.winner !== null && o.winner !== undefined
      ? "PASS"
      : o.reasons.some((x) => x.startsWith("held-out"))
        ? "FAIL"
        : "PASS";
  const evidence =
    o.rule === "bayes"
      ? `P(improvement) ${(o.pGood ?? 0).toFixed(3)}`
      : o.winner
        ? `${o.winner}: ${improvementWords(o.improvement)}`
        : "no candidate accepted";
  const lines = [
    `Step 3: held-out split (${o.rule}) ... ${heldOut} (${evidence}, stopped at ${stageWords(o.stage)}, ${o.testRuns ?? 0} held-out run(s))`,
  ];
  if ((o.candidates?.length ?? 0) > 1)
    for (const c of o.candidates ?? [])
      lines.push(
        `  ${c.id}: ${c.verdict} at ${stageWords(c.stage)} — ${c.reason}${c.valScore === null ? "" : `; val_score ${c.valScore.toFixed(4)}`}${c.improvement ? `; ${improvementWords(c.improvement)}` : ""}`,
      );
  lines.push(
    v === null
      ? "Step 4: regression suite ... PASS (empty suite)"
      : `Step 4: regression suite ... ${verdict(v.passed)} (${v.total - v.failed.length}/${v.total} members passed; the incumbent's rates allow ${v.allowedFailures} failure(s)${v.quarantined.length ? `; quarantined as flaky: ${v.quarantined.join(", ")}` : ""})`,
  );
  lines.push(
    o.promoted.length > 0
      ? `Step 5: suite promotion ... ${o.promoted.length} task(s) passed 2 of 3 runs and joined: ${o.promoted.join(", ")}`
      : "Step 5: suite promotion ... none",
  );
  for (const note of o.notes ?? []) lines.push(`Note: ${note}`);
  return lines.join("\n");
}

export function stageWords(stage: string | undefined): string {
  switch (stage) {
    case "train":
      return "the train evidence (no held-out run)";
    case "look":
      return "an early look";
    case "full":
      return "the full pass";
    case "extra":
    case "rerun":
      return "the paired re-runs";
    case "budget":
      return "the round's held-out runs or the night's error budget";
    case "file_guard":
      return "the file guard";
    case "hardcode":
      return "the hard-coding check";
    case "load_check":
      return "the load check";
    case "infra":
      return "too many infrastructure errors";
    default:
      return stage ?? "?";
  }
}

/** Any error ends the gate with exit 2: neither a pass nor a verdict of "no". */
const GATE_ERRORS: ErrorStyle = { label: "GATE ERROR", showCode: true, exitCode: () => 2 };

/** The `gate` command: runs the gate, prints each step; exit 0 pass, 1 fail, 2 error. */
export async function runGateCommand(deps: GateCommandDeps): Promise<number> {
  const { stdout, stderr = stdout, ...gateDeps } = deps;
  return presented(stderr, GATE_ERRORS, async () => {
    const out = await runGate({ ...gateDeps, onStep: (r) => stdout.write(`${formatStep(r)}\n`) });
    if (out.passed) {
      stdout.write(
        out.rule === "bayes"
          ? `GATE PASSED: P(improvement) ${(out.pGood ?? 0).toFixed(3)}, val_score ${out.valScore?.toFixed(4)}\n`
          : out.rule === "paired"
            ? `GATE PASSED: ${out.winner} accepted, val_score ${out.valScore?.toFixed(4)}, ${improvementWords(out.improvement)}\n`
            : `GATE PASSED: val_score ${out.valScore?.toFixed(4)}\n`,
      );
      return 0;
    }
    stdout.write(`GATE FAILED:\n${out.reasons.map((r) => `  - ${r}\n`).join("")}`);
    return 1;
  });
}

/** `gate --explain <iteration>`: reads the journal only; exit 2 when there is no such decision. */
export function explainCommand(
  o: GlobalOptions & { iteration: string; run?: string | undefined; stdout: Writable },
): number {
  const iteration = Number(o.iteration);
  if (!Number.isInteger(iteration) || iteration < 0) {
    throw new UserError("USAGE", `--explain takes an iteration number, got ${JSON.stringify(o.iteration)}`);
  }
  const exp = openExperiment(o);
  if (!existsSync(exp.paths.journal))
    throw new UserError("RUN_STATE", "no journal yet; run `auto-harness prepare` first");
  const journal = Journal.open(exp.paths.journal, { readonly: true });
  try {
    const d = findDecision(journal.gateRecords, iteration, o.run);
    if (!d)
      throw new UserError("USAGE", `no gate decision for iteration ${iteration}${o.run ? ` of run ${o.run}` : ""}`);
    o.stdout.write(
      explainDecision(
        d,
        journal.gateRecords.gateResults(d.runId, d.iteration),
        journal.gateRecords.gateRuns(d.runId, d.iteration),
      ),
    );
    return 0;
  } finally {
    journal.close();
  }
}
