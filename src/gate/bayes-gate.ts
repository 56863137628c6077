/**
 * The I/O shell of the `bayes` gate rule (./rule/bayes.ts): it runs what the rule asks for, journals every
 * result as it comes, and replays them on resume, so a gate killed mid-way continues from its last finished
 * task. Held-out results leave it as ids and numbers only.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { agentHashOf } from "../benchmark/runner.ts";
import type { BenchmarkRunner, RunRequest } from "../benchmark/types.ts";
import type { Config } from "../config/schema.ts";
import type { GateOutput } from "../contracts.ts";
import { AbortedError } from "../errors.ts";
import type { Repo } from "../git/repo.ts";
import type { GateResultRow, Stores, TaskHistory } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { passes } from "../scoring.ts";
import type { SplitFile, Suite } from "../workspace/files.ts";
import { AGENT_FILE, paths } from "../workspace/paths.ts";
import { foldIntoHistory } from "./history.ts";
import {
  applyResult,
  type BayesParams,
  type Counts,
  candidateMean,
  DEFAULT_BAYES,
  fitPrior,
  type GateSetup,
  type Look,
  nextAction,
  startGate,
  updateHistories,
} from "./rule/bayes.ts";
import { type FlakySuiteVerdict, flakySuiteVerdict, JOIN_RUNS, nextSuite } from "./suite.ts";

/** The most a gate lets infrastructure errors take of its held-out runs before it refuses to decide. */
export const GATE_INFRA_LIMIT = 0.2;
/** Paired re-runs use trials from here on, unique per iteration, so they never reuse another gate's runs. */
const PAIR_TRIALS = 10_000;
const SUITE_TRIALS = 5_000;

export type BayesConfig = Pick<Config, "threshold"> &
  Partial<Pick<Config, "gate_tau" | "gate_train_weight" | "trials" | "infra_error_share" | "seed" | "agent_file">>;

export function bayesParams(config: BayesConfig): BayesParams {
  return {
    ...DEFAULT_BAYES,
    tau: config.gate_tau ?? DEFAULT_BAYES.tau,
    trainWeight: config.gate_train_weight ?? DEFAULT_BAYES.trainWeight,
  };
}

export interface BayesProgress {
  kind: "train" | "look" | "pair" | "suite";
  look?: Look;
  /** Held-out runs so far in this gate. */
  testRuns: number;
  pGood?: number;
}

export interface BayesGateInput {
  root: string;
  config: BayesConfig;
  journal: Pick<Stores, "gateRecords" | "taskResults">;
  log: Logger;
  runner: BenchmarkRunner;
  repo: Repo;
  /** The run and iteration the decision is journaled under. */
  runId: string;
  iteration: number;
  split: SplitFile;
  suite: Suite;
  previousBest: number | null;
  notes: string[];
  signal?: AbortSignal;
  onProgress?: (p: BayesProgress) => void;
}

export interface BayesGateResult {
  output: GateOutput;
  suite: Suite;
  suiteVerdict: FlakySuiteVerdict | null;
}

/** Seed of the held-out order: reproducible from the config's seed and the iteration, and journaled. */
export function orderSeed(seed: number, runId: string, iteration: number): number {
  return Number.parseInt(agentHashOf(`${seed}:${runId}:${iteration}`).slice(0, 8), 16);
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError("gate aborted", signal.reason);
}

function setupOf(stored: unknown): GateSetup {
  return stored as GateSetup;
}

export async function runBayesGate(input: BayesGateInput): Promise<BayesGateResult> {
  const { runner, log, repo, runId, iteration, split, signal, config } = input;
  const { gateRecords, taskResults } = input.journal;
  const agent = config.agent_file ?? AGENT_FILE;
  const p = paths(input.root, undefined, agent);
  const trials = config.trials ?? 1;
  const params = bayesParams(config);

  // The incumbent: the last accepted agent file, next to the candidate, for the paired re-runs.
  const accepted = await repo.lastAcceptedCommit(agent);
  const incumbentSource = (await repo.fileAtCommit(accepted, agent)) ?? readFileSync(p.agentFile, "utf8");
  const incumbentFile = join(p.workspace, "incumbent", basename(agent));
  mkdirSync(dirname(incumbentFile), { recursive: true });
  writeFileSync(incumbentFile, incumbentSource);
  const incumbentHash = agentHashOf(incumbentSource);
  const candidateHash = agentHashOf(readFileSync(p.agentFile));

  const common = { runId, iteration, signal, writeTraces: false, reuse: true } satisfies Partial<RunRequest>;
  const testSet = new Set(split.test);
  const trainSet = new Set(split.train);
  const splitOf = (id: string) => (testSet.has(id) ? "test" : trainSet.has(id) ? "train" : null);

  const existing = gateRecords.gateDecision(runId, iteration);
  if (existing && existing.candidateHash !== candidateHash) gateRecords.resetGateDecision(runId, iteration);
  const prior = existing && existing.candidateHash === candidateHash ? existing : undefined;
  if (prior?.status === "decided" && prior.output) {
    log.info({ gateStep: "bayes" }, "gate: this candidate was decided already; reusing the journaled decision");
    return prior.output as BayesGateResult;
  }

  // The candidate's train results: the free first look, and the regression suite's evidence.
  const trainRun = await runner.run({ ...common, split: "train", taskIds: split.train });
  const trainCandidate = trainRun.results;
  checkAborted(signal);

  let setup: GateSetup;
  if (prior) {
    setup = setupOf(prior.details.setup);
  } else {
    // Every incumbent run not yet counted (the baseline, this iteration's train run) joins its history.
    foldIntoHistory(gateRecords, incumbentHash, splitOf);
    const histTest: TaskHistory = {};
    const allTest = gateRecords.gateHistory("test");
    for (const id of split.test) if (allTest[id]) histTest[id] = allTest[id];
    const histTrain: TaskHistory = {};
    const allTrain = gateRecords.gateHistory("train");
    for (const id of split.train) if (allTrain[id]) histTrain[id] = allTrain[id];
    const decided = gateRecords.gateDecisions(runId).filter((d) => d.status === "decided" && d.iteration < iteration);
    setup = {
      params: { ...params, ...fitPrior([histTest, histTrain], params) },
      testIds: [...split.test],
      orderSeed: orderSeed(config.seed ?? 0, runId, iteration),
      trials,
      histTest,
      histTrain,
      trainCandidate,
      testRunsSoFar: split.test.length + decided.reduce((n, d) => n + d.testRuns, 0),
      iteration: decided.length + 1,
      infraLimit: Math.min(GATE_INFRA_LIMIT, config.infra_error_share ?? GATE_INFRA_LIMIT),
    };
    gateRecords.startGateDecision({
      runId,
      iteration,
      rule: "bayes",
      candidateHash,
      incumbentHash,
      details: { orderSeed: setup.orderSeed, setup },
    });
  }

  // Replay what the journal holds, then go on from there.
  const state = startGate(setup);
  for (const r of gateRecords.gateResults(runId, iteration)) {
    nextAction(state);
    applyResult(
      state,
      r.kind === "candidate"
        ? { who: "candidate", taskId: r.taskId, trial: r.trial, reward: r.reward }
        : { who: "pair", taskId: r.taskId, index: r.trial, candidate: r.reward, incumbent: r.incumbentReward },
    );
  }
  let looksSeen = state.looks.length;
  const report = () => {
    for (; looksSeen < state.looks.length; looksSeen++) {
      const look = state.looks[looksSeen]!;
      input.onProgress?.({ kind: "look", look, testRuns: state.testRuns, pGood: look.pGood });
      log.info(
        { gateStep: "look", fraction: look.fraction, pGood: look.pGood, pBad: look.pBad, testRuns: state.testRuns },
        `gate: look at ${Math.round(look.fraction * 100)}%: P(improvement) ${look.pGood.toFixed(3)}`,
      );
    }
  };

  for (;;) {
    checkAborted(signal);
    const a = nextAction(state);
    report();
    if (a.kind === "decide") break;
    if (a.kind === "run") {
      const byTrial = new Map<number, string[]>();
      for (const t of a.tasks) byTrial.set(t.trial, [...(byTrial.get(t.trial) ?? []), t.taskId]);
      for (const [trial, taskIds] of byTrial) {
        const run = await runner.run({ ...common, split: "test", taskIds, trial });
        const rows: GateResultRow[] = taskIds.map((taskId) => ({
          kind: "candidate",
          taskId,
          trial,
          reward: run.results[taskId] ?? null,
          incumbentReward: null,
        }));
        gateRecords.appendGateResults(runId, iteration, rows);
        for (const r of rows) applyResult(state, { who: "candidate", taskId: r.taskId, trial, reward: r.reward });
      }
      continue;
    }
    // A pair: candidate and incumbent on the same task at the same time, so an outage hits both.
    const trial = PAIR_TRIALS * (iteration + 1) + a.index;
    const [c, i] = await Promise.all([
      runner.run({ ...common, split: "test", taskIds: [a.taskId], trial }),
      runner.run({ ...common, split: "test", taskIds: [a.taskId], trial, agentFile: incumbentFile }),
    ]);
    const row: GateResultRow = {
      kind: "pair",
      taskId: a.taskId,
      trial: a.index,
      reward: c.results[a.taskId] ?? null,
      incumbentReward: i.results[a.taskId] ?? null,
    };
    gateRecords.appendGateResults(runId, iteration, [row]);
    applyResult(state, {
      who: "pair",
      taskId: a.taskId,
      index: a.index,
      candidate: row.reward,
      incumbent: row.incumbentReward,
    });
    input.onProgress?.({ kind: "pair", testRuns: state.testRuns });
  }
  const decision = state.decision!;

  // The regression suite, flake-aware: members the candidate fails are re-run on the incumbent first.
  const suite = input.suite;
  const failing = suite.tasks.filter(
    (id) => !(suite.quarantined ?? []).includes(id) && trainCandidate[id] !== null && !passes(trainCandidate[id]),
  );
  let incumbentRerun: Record<string, number | null> = {};
  if (failing.length > 0 && decision.accept) {
    const rerun = await runner.run({
      ...common,
      split: "train",
      taskIds: failing,
      trial: SUITE_TRIALS + iteration,
      agentFile: incumbentFile,
    });
    incumbentRerun = rerun.results;
  }
  const suiteVerdict = suite.tasks.length > 0 ? flakySuiteVerdict(suite, trainCandidate, incumbentRerun) : null;
  const accept = decision.accept && (suiteVerdict?.passed ?? true);

  // Promotion, k of n: train tasks the incumbent failed and the new agent passed, run again before joining.
  const promotionRuns: Record<string, (number | null)[]> = {};
  if (accept) {
    const incumbentTrain = taskResults.taskResults(incumbentHash, "train");
    const incFailed = new Set(
      incumbentTrain.filter((r) => r.reward !== null && !passes(r.reward)).map((r) => r.taskId),
    );
    const candidates = split.train.filter(
      (id) => incFailed.has(id) && passes(trainCandidate[id]) && !suite.tasks.includes(id),
    );
    if (candidates.length > 0) {
      for (const id of candidates) promotionRuns[id] = [trainCandidate[id] ?? null];
      for (let t = 1; t < JOIN_RUNS; t++) {
        checkAborted(signal);
        const run = await runner.run({ ...common, split: "train", taskIds: candidates, trial: t });
        for (const id of candidates) promotionRuns[id]!.push(run.results[id] ?? null);
      }
    }
  }
  const newSuite = nextSuite(
    suite,
    config.threshold,
    suiteVerdict,
    accept ? { results: trainCandidate, promotionRuns } : null,
  );
  const promoted = newSuite.tasks.filter((id) => !suite.tasks.includes(id));

  const reasons: string[] = [];
  if (!decision.accept) reasons.push(`held-out split: ${decision.reason}`);
  if (suiteVerdict && !suiteVerdict.passed) {
    reasons.push(
      `regression suite: ${suiteVerdict.failed.length} of ${suiteVerdict.total} member(s) failed, more than the ${suiteVerdict.allowedFailures} the incumbent's own rates allow`,
    );
  }
  const valScore = candidateMean(state);
  const output: GateOutput = {
    passed: accept,
    valScore,
    previousBest: input.previousBest,
    suitePassed: suiteVerdict ? suiteVerdict.total - suiteVerdict.failed.length : 0,
    suiteTotal: suiteVerdict?.total ?? 0,
    promoted,
    reasons,
    rule: "bayes",
    pGood: decision.pGood,
    pBad: decision.pBad,
    stage: decision.stage,
    testRuns: state.testRuns,
    ...(input.notes.length ? { notes: input.notes } : {}),
  };
  const trainCounts: Record<string, Counts> = {};
  for (const [id, r] of Object.entries(trainCandidate)) if (r !== null) trainCounts[id] = { s: r, f: 1 - r };
  const histories = updateHistories(state, accept, trainCounts);
  const result: BayesGateResult = { output, suite: newSuite, suiteVerdict };
  gateRecords.finishGateDecision(
    runId,
    iteration,
    {
      accept,
      stage: decision.stage,
      testRuns: state.testRuns,
      infraErrors: state.infraErrors,
      valScore,
      output: result,
      details: {
        pGood: decision.pGood,
        pBad: decision.pBad,
        expectedGain: decision.expectedGain,
        looks: { looks: state.looks, reason: decision.reason, pairs: state.pairs, extraBudget: state.extraBudget },
      },
    },
    { test: histories.test, train: histories.train, fold: [incumbentHash, candidateHash] },
  );
  log.info(
    {
      gateStep: "bayes",
      accept,
      stage: decision.stage,
      pGood: decision.pGood,
      pBad: decision.pBad,
      testRuns: state.testRuns,
      pairs: state.pairs,
    },
    `gate: ${accept ? "accepted" : "rejected"} at ${decision.stage}: ${decision.reason}`,
  );
  return result;
}
