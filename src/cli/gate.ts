import { type GateDeps, type GateStepReport, runGate } from "../gate/gate.ts";
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
    case "promotion":
      return r.promoted.length > 0
        ? `Step 5: suite promotion ... ${r.promoted.length} of ${r.candidates} previously failing task(s) promoted: ${r.promoted.join(", ")}`
        : `Step 5: suite promotion ... none (${r.candidates} previously failing task(s) checked)`;
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
      stdout.write(`GATE PASSED: val_score ${out.valScore?.toFixed(4)}\n`);
      return 0;
    }
    stdout.write(`GATE FAILED:\n${out.reasons.map((r) => `  - ${r}\n`).join("")}`);
    return 1;
  });
}
