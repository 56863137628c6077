/**
 * A round of a rule driven through the seam (`paired`, `bayes`): each candidate's train run (the free screen),
 * the rule's held-out batches through the runner (drive.ts), the regression suite on the winner, and the
 * decision journaled with what the next round starts from. Journaled as it goes: the setup once, each
 * held-out run as it lands; a round killed anywhere resumes by replaying them. Held-out tasks leave it as
 * ids and numbers only.
 */
import { agentHashOf } from "../benchmark/agent-hash.ts";
import type { BenchmarkRunner } from "../benchmark/types.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { CandidateOutcome, GateOutput } from "../contracts.ts";
import { crashPoint } from "../crash-point.ts";
import type { GateDecisionRow, Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import type { SplitFile, Suite } from "../workspace/files.ts";
import { driveRule } from "./drive.ts";
import { pinRewardModel } from "./reward-pin.ts";
import { type FactsConfig, type Night, roundFacts } from "./round-facts.ts";
import { flakySuiteReason, suiteAfterRound } from "./round-suite.ts";
import { type RuleEntry, seamRule } from "./rules/registry.ts";
import type { ArmVerdict, Decision, RunOutcome } from "./rules/types.ts";
import type { FlakySuiteVerdict } from "./suite.ts";

/** A candidate of the round as the guards let it through. */
export interface CandidateArm {
  id: string;
  /** Absolute path of its agent file; undefined: the experiment's own (a round of one candidate). */
  agentFile: string | undefined;
  hash: string;
  /** Train tasks it names or copies (the hard-coding check): never promoted into the suite. */
  memorised: readonly string[];
  /** `regatedFrom`: a runner-up of that iteration, re-gated against the new champion. */
  edit: { hypothesis: string; pattern: string; changeSummary: string; regatedFrom?: number } | null;
  /** Its change, as a patch of the editable files (train content only: held-out content is refused earlier). */
  diff: string;
}

/**
 * One candidate as the journal keeps it, in the decision's `details.candidates` (the morning's pages read it):
 * what it tried, where it stopped and why, and its first-pass score with its paired interval.
 */
export interface RoundCandidate extends CandidateOutcome {
  hypothesis: string | null;
  pattern: string | null;
  changeSummary: string | null;
  /** A runner-up of that iteration, re-gated here against the new champion. */
  regatedFrom?: number;
  diff: string;
  /** Held-out runs of this candidate, and the rule's own figures (e-value, probabilities). */
  runs: number;
  figures: Record<string, number>;
}

export interface RoundInput {
  rule: string;
  config: FactsConfig & { threshold: number; max_concurrency?: number };
  journal: Pick<Stores, "gateRecords" | "taskResults" | "pins">;
  log: Logger;
  runner: BenchmarkRunner;
  runId: string;
  iteration: number;
  split: SplitFile;
  suite: Suite;
  previousBest: number | null;
  notes: string[];
  night: Night;
  incumbent: { file: string; hash: string };
  arms: CandidateArm[];
  /** Candidates the guards stopped (file guard, hard-coding, load check). */
  stopped: RoundCandidate[];
  signal?: AbortSignal;
  /** Times the train screens: the night's held-out bank credits a wide round for them (budget.ts). */
  clock?: Pick<Clock, "now">;
}

export interface RoundResult {
  output: GateOutput;
  suite: Suite;
  suiteVerdict: FlakySuiteVerdict | null;
}

/** One key for the round's candidates: a different set at the same iteration starts the round afresh. */
export const roundKey = (arms: readonly { id: string; hash: string }[]): string =>
  arms.length === 1 ? arms[0]!.hash : agentHashOf(arms.map((a) => `${a.id}:${a.hash}`).join("\n"));

const asRuns = (rows: ReturnType<Stores["gateRecords"]["gateRuns"]>): RunOutcome[] => rows.map((r) => ({ ...r }));

/**
 * An arm's val_score, the same for every rule: the mean of its first held-out run of each task (its lowest
 * trial), infrastructure errors left out. Re-runs a rule chose never enter it.
 */
export function firstPassMean(runs: readonly RunOutcome[], arm: string, tasks = 0): number | null {
  const first = new Map<string, RunOutcome>();
  for (const r of runs)
    if (r.arm === arm && (first.get(r.taskId)?.trial ?? Number.POSITIVE_INFINITY) > r.trial) first.set(r.taskId, r);
  // A pass cut short (futility, the round's runs) has no val_score: beside the incumbent's over every task, a
  // mean over only the tasks it reached would read as a change that the paired figures do not show.
  if (first.size < tasks) return null;
  const scored = [...first.values()].map((r) => r.reward).filter((x): x is number => x !== null);
  return scored.length === 0 ? null : scored.reduce((a, b) => a + b, 0) / scored.length;
}

function candidateOf(arm: CandidateArm, v: ArmVerdict | undefined, accepted: string | null): RoundCandidate {
  const verdict = !v ? "rejected" : v.arm === accepted ? "winner" : v.verdict === "winner" ? "rejected" : v.verdict;
  return {
    id: arm.id,
    verdict,
    stage: v?.stage ?? "train",
    reason:
      v && v.verdict === "winner" && v.arm !== accepted
        ? `${v.reason}; refused by the regression suite`
        : (v?.reason ?? "no verdict"),
    valScore: v?.valScore ?? null,
    improvement: v?.improvement ?? null,
    hypothesis: arm.edit?.hypothesis ?? null,
    pattern: arm.edit?.pattern ?? null,
    changeSummary: arm.edit?.changeSummary ?? null,
    ...(arm.edit?.regatedFrom === undefined ? {} : { regatedFrom: arm.edit.regatedFrom }),
    diff: arm.diff,
    runs: v?.runs ?? 0,
    figures: v?.figures ?? {},
  };
}

/** The candidates' train runs (the free screen, and the suite's evidence for the winner), and how long they took. */
async function trainRuns(
  input: RoundInput,
): Promise<{ of: Record<string, Record<string, number | null>>; ms: number }> {
  const out: Record<string, Record<string, number | null>> = {};
  const clock = input.clock ?? systemClock;
  const started = clock.now();
  // One after another: the runner fills max_concurrency with each.
  for (const arm of input.arms) {
    const run = await input.runner.run({
      split: "train",
      taskIds: input.split.train,
      runId: input.runId,
      iteration: input.iteration,
      writeTraces: false,
      reuse: true,
      ...(input.signal ? { signal: input.signal } : {}),
      ...(arm.agentFile === undefined ? {} : { agentFile: arm.agentFile }),
    });
    out[arm.id] = run.results;
    crashPoint("gate:screened");
  }
  return { of: out, ms: Math.max(0, clock.now() - started) };
}

/**
 * The setup: made and journaled at the round's start in one transaction (its trial base is used once, even
 * when the process dies right after), read back on resume.
 */
function startRound(
  input: RoundInput,
  entry: RuleEntry<unknown, unknown>,
  screen: Awaited<ReturnType<typeof trainRuns>>,
  prior: GateDecisionRow | undefined,
): unknown {
  const trainOf = screen.of;
  if (prior) return prior.details.setup;
  return input.journal.gateRecords.transaction(() => {
    const facts = roundFacts({ ...input, incumbentHash: input.incumbent.hash, trainOf });
    const setup = entry.setupOf(facts);
    input.journal.gateRecords.startGateDecision({
      runId: input.runId,
      iteration: input.iteration,
      rule: input.rule,
      candidateHash: roundKey(input.arms),
      incumbentHash: input.incumbent.hash,
      details: {
        seam: true,
        setup,
        trialBase: facts.trialBase,
        night: facts.night,
        candidates: input.stopped,
        screen: { ms: screen.ms, arms: input.arms.length },
      },
    });
    return setup;
  });
}

export async function runRound(input: RoundInput): Promise<RoundResult> {
  const { journal, log, runId, iteration } = input;
  const { gateRecords } = journal;
  const entry = seamRule(input.rule);
  if (!entry) throw new Error(`gate rule ${input.rule} is not driven through the seam`);
  // A different set of candidates at the same iteration (the edit ran again) starts its round afresh.
  const existing = gateRecords.gateDecision(runId, iteration);
  const prior =
    existing?.candidateHash === roundKey(input.arms) && existing.rule === input.rule && existing.details.seam
      ? existing
      : undefined;
  if (existing && !prior) gateRecords.resetGateDecision(runId, iteration);
  if (prior?.status === "decided" && prior.output) {
    log.info({ gateStep: input.rule }, "gate: this round was decided already; reusing the journaled decision");
    return prior.output as RoundResult;
  }

  const screen = await trainRuns(input);
  const trainOf = screen.of;
  const setup = startRound(input, entry, screen, prior);
  const request = { runId, iteration, ...(input.signal ? { signal: input.signal } : {}) };
  const files = new Map(input.arms.map((a) => [a.id, a.agentFile]));
  files.set("incumbent", input.incumbent.file);
  const { state, decision } = await driveRule({
    rule: entry.rule,
    setup,
    journaled: asRuns(gateRecords.gateRuns(runId, iteration)),
    runner: input.runner,
    agentFileOf: (arm) => files.get(arm),
    record: (rows) => {
      gateRecords.appendGateRuns(runId, iteration, rows);
      crashPoint("gate:run-landed");
    },
    concurrency: input.config.max_concurrency ?? 4,
    request,
  });

  const winnerArm = input.arms.find((a) => a.id === decision.winner) ?? null;
  const suite = await suiteAfterRound({
    runner: input.runner,
    taskResults: journal.taskResults,
    suite: input.suite,
    threshold: input.config.threshold,
    split: input.split,
    iteration,
    winner: winnerArm && {
      train: trainOf[winnerArm.id] ?? {},
      agentFile: winnerArm.agentFile,
      memorised: winnerArm.memorised,
    },
    incumbent: input.incumbent,
    request,
  });
  const accepted = suite.passed ? winnerArm : null;
  const runs = asRuns(gateRecords.gateRuns(runId, iteration));
  const arms = decision.arms.map((a) => ({
    ...a,
    valScore: firstPassMean(runs, a.arm, a.arm === decision.winner ? 0 : input.split.test.length),
  }));
  return finishRound(input, entry, state, { ...decision, arms }, accepted, suite);
}

function finishRound(
  input: RoundInput,
  entry: RuleEntry<unknown, unknown>,
  state: unknown,
  decision: Decision,
  accepted: CandidateArm | null,
  suite: Awaited<ReturnType<typeof suiteAfterRound>>,
): RoundResult {
  const { journal, runId, iteration } = input;
  const byArm = new Map(decision.arms.map((a) => [a.arm, a]));
  const candidates = [
    ...input.stopped,
    ...input.arms.map((arm) => candidateOf(arm, byArm.get(arm.id), accepted?.id ?? null)),
  ];
  const won = accepted ? byArm.get(accepted.id) : undefined;
  const reasons: string[] = [];
  if (!decision.winner) reasons.push(`held-out split: ${decision.reason}`);
  const suiteWhy = flakySuiteReason(suite.verdict);
  if (suiteWhy) reasons.push(suiteWhy);
  const first = won ?? decision.arms.find((a) => a.valScore !== null);
  const output: GateOutput = {
    passed: accepted !== null,
    valScore: first?.valScore ?? null,
    previousBest: input.previousBest,
    suitePassed: suite.verdict ? suite.verdict.total - suite.verdict.failed.length : 0,
    suiteTotal: suite.verdict?.total ?? 0,
    promoted: suite.promoted,
    reasons,
    rule: input.rule,
    improved: accepted !== null,
    winner: accepted?.id ?? null,
    candidates: candidates.map(({ id, verdict, stage, reason, valScore, improvement }) => ({
      id,
      verdict,
      stage,
      reason,
      valScore,
      improvement,
    })),
    improvement: won?.improvement ?? null,
    why: accepted && won && input.arms.length + input.stopped.length > 1 ? `${accepted.id} won: ${won.reason}` : null,
    stage: decision.stage,
    testRuns: decision.heldOutRuns,
    ...(typeof first?.figures.pGood === "number"
      ? { pGood: first.figures.pGood, pBad: first.figures.pBad ?? null }
      : {}),
    ...(input.notes.length ? { notes: input.notes } : {}),
  };
  const next = entry.after(state, { ...decision, winner: accepted?.id ?? null });
  const result: RoundResult = { output, suite: suite.suite, suiteVerdict: suite.verdict };
  journal.gateRecords.finishGateDecision(
    runId,
    iteration,
    {
      accept: accepted !== null,
      stage: decision.stage,
      testRuns: decision.heldOutRuns,
      infraErrors: decision.infraErrors,
      valScore: output.valScore,
      output: result,
      details: {
        alphaUsed: decision.alphaUsed,
        reason: decision.reason,
        winner: accepted?.id ?? null,
        candidates,
        ...(typeof first?.figures.pGood === "number" ? { pGood: first.figures.pGood } : {}),
      },
    },
    {
      test: next.test,
      train: next.train,
      fold: [input.incumbent.hash, ...(accepted ? [accepted.hash] : [])],
    },
  );
  if (next.model) pinRewardModel(journal.pins, next.model);
  input.log.info(
    {
      gateStep: input.rule,
      accept: accepted !== null,
      winner: accepted?.id ?? null,
      stage: decision.stage,
      testRuns: decision.heldOutRuns,
      alphaUsed: decision.alphaUsed,
    },
    `gate: ${accepted ? `accepted ${accepted.id}` : "nothing accepted"} at ${decision.stage}: ${decision.reason}`,
  );
  return result;
}
