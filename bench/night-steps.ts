/**
 * The steps of a simulated night: the loop machine's actors with the runner and the coding model simulated
 * on simulated time, and the gate rules as shipped (src/gate/rules) deciding on the simulated runs. Spend
 * lands in the real journal's ledger, so the machine's own budget and deadline rules stop the night.
 */
import { setMaxListeners } from "node:events";
import { DEFAULT_PLATEAU } from "../machines/plateau.ts";
import { budgetExhausted, withinBudget } from "../src/budget.ts";
import type { GateOutput, Steps } from "../src/contracts.ts";
import { type HoldoutResult, pairedHoldout } from "../src/gate/holdout.ts";
import { originalRule } from "../src/gate/rules/original.ts";
import { type PairedState, pairedRule } from "../src/gate/rules/paired.ts";
import { type Decision, type GateRule, INCUMBENT, type Run, type RunOutcome } from "../src/gate/rules/types.ts";
import type { Journal } from "../src/journal/journal.ts";
import type { LlmRole } from "../src/journal/ledger.ts";
import { learnIteration } from "../src/learnings/learnings.ts";
import type { Logger } from "../src/log.ts";
import { decideAngle } from "../src/steps/angle.ts";
import { createCheck } from "../src/steps/check.ts";
import { paths } from "../src/workspace/paths.ts";
import { PairedBook } from "./gate-paired.ts";
import { Rng } from "./gate-world.ts";
import type { SimClock } from "./night-clock.ts";
import { SimPool } from "./night-clock.ts";
import { classify, type World } from "./night-world.ts";

export interface Policy {
  name: string;
  rule: "original" | "paired";
  /** Candidates per round. */
  k: number;
  /** Change the proposer's angle after a plateau (machines/plateau.ts). */
  restart: boolean;
  /** Race every survivor of the train screen, whatever the round's held-out allowance can pay for. */
  raceAll?: boolean;
  /** Race at most this many survivors (`gate_race_width`; unset: the rule's default). */
  raceWidth?: number;
}

export interface NightDeps {
  world: World;
  policy: Policy;
  clock: SimClock;
  journal: Journal;
  log: Logger;
  /** The workspace root (learnings.md is written under it). */
  root: string;
  runId: string;
  start: number;
  deadline: number;
}

type Accept = { id: string; parent: string; kind: ReturnType<typeof classify> };

async function drive<S, T>(
  rule: GateRule<S, T>,
  setup: S,
  run: (runs: readonly Run[]) => Promise<RunOutcome[]>,
): Promise<{ state: T; decision: Decision }> {
  let state = rule.start(setup);
  for (;;) {
    const action = rule.next(state);
    if (action.kind === "decide") return { state, decision: action.decision };
    state = rule.apply(state, await run(action.runs));
  }
}

/** One night of one policy: the state the steps share, and what the morning reads of it. */
export class SimNight {
  incumbent = "v0";
  readonly accepted: Accept[] = [];
  heldOutRuns = 0;
  restarts = 0;
  /** Candidates the coding model proposed that truly improved on their incumbent. */
  realProposed = 0;
  holdout: HoldoutResult | null = null;
  private readonly pool: SimPool;
  private readonly timing: Rng;
  private readonly baselineHoldout: Record<string, number>;
  private readonly book: PairedBook;
  private best: number;
  private trainRun: Record<string, number | null> = {};
  private hypotheses: number[] = [];
  private candidates: string[] = [];
  private winner: string | null = null;
  private anchored: number | null = null;
  private fresh = false;
  private spent = 0;
  private nextId = 1;

  constructor(private readonly d: NightDeps) {
    const { world } = d;
    this.pool = new SimPool(d.clock, world.params.concurrency);
    this.timing = new Rng(world.params.trainTasks * 31 + d.start);
    // prepare, before the night: the held-out split once, the train split twice, the holdout once.
    const once = (ids: string[]) => ids.map((id) => world.run("v0", id));
    const test = once(world.testIds);
    this.book = new PairedBook(
      { test, train: [once(world.trainIds), once(world.trainIds)] },
      world.testIds,
      world.trainIds,
    );
    this.best = test.reduce((a, b) => a + b, 0) / test.length;
    this.baselineHoldout = Object.fromEntries(world.holdoutIds.map((id) => [id, world.run("v0", id)]));
  }

  get baselineValScore(): number {
    return this.best;
  }

  private charge(iteration: number, role: LlmRole, usd: number, calls = 1): void {
    if (usd <= 0) return;
    this.d.journal.ledger.recordLlmCall({
      runId: this.d.runId,
      iteration,
      stepKey: null,
      role,
      model: role === "coding" ? "simulated-coding-model" : "simulated-agent-model",
      promptHash: null,
      inputTokens: 0,
      outputTokens: 0,
      cacheCreationTokens: 0,
      cacheReadTokens: 0,
      costUsd: usd,
      latencyMs: 0,
      stopReason: `${calls} call(s)`,
      response: null,
    });
  }

  /** The runner's budget rule, per task run: a run starts only while its cost fits in what is left. */
  private pay(usd: number): void {
    const cap = this.d.world.params.budgetUsd;
    if (!withinBudget(cap, this.spent, usd)) throw budgetExhausted(cap, this.spent);
    this.spent += usd;
  }

  /** Task runs through the shared pool; the first failure (the budget) stops the rest. */
  private async runTasks(iteration: number, runs: readonly { version: string; taskId: string }[], signal: AbortSignal) {
    const { world } = this.d;
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    // Every run in the pool waits on this one signal.
    setMaxListeners(0, both);
    let paid = 0;
    try {
      return await Promise.all(
        runs.map((r) =>
          this.pool.run(
            world.params.taskMs,
            () => {
              this.pay(world.params.taskUsd);
              paid += world.params.taskUsd;
              return world.run(r.version, r.taskId);
            },
            both,
          ),
        ),
      );
    } catch (error) {
      stop.abort(error);
      throw error;
    } finally {
      this.charge(iteration, "agent", paid, runs.length);
    }
  }

  private async codingCall(iteration: number, ms: number, usd: number, signal: AbortSignal): Promise<void> {
    this.pay(usd);
    this.charge(iteration, "coding", usd);
    await this.d.clock.sleep(ms, signal);
  }

  private async gatePaired(iteration: number, signal: AbortSignal) {
    const { world, clock, start, deadline } = this.d;
    const screened = clock.now();
    const trains = await Promise.all(
      this.candidates.map((c) =>
        this.runTasks(
          iteration,
          world.trainIds.map((taskId) => ({ version: c, taskId })),
          signal,
        ),
      ),
    );
    const trainOf = Object.fromEntries(
      this.candidates.map((c, j) => [c, Object.fromEntries(world.trainIds.map((id, i) => [id, trains[j]![i]!]))]),
    );
    const view = {
      round: iteration,
      plannedRounds: null,
      deadlineMs: deadline - start,
      elapsedMs: clock.now() - start,
      orderSeed: Math.floor(this.timing.random() * 2 ** 31),
      trainIncumbent: this.trainRun,
      screenMs: clock.now() - screened,
    };
    const setup = this.book.setup({ ...view, trainCandidates: trainOf });
    // `-all`: every survivor races, whatever the round's held-out runs can pay for.
    if (this.d.policy.raceAll) setup.params = { ...setup.params, racePasses: 0 };
    const width = this.d.policy.raceWidth;
    if (width !== undefined) setup.params = { ...setup.params, raceWidth: width };
    const out = await drive<typeof setup, PairedState>(pairedRule, setup, (runs) =>
      this.heldOut(iteration, runs, signal),
    );
    this.book.settle(out.state, out.decision);
    return out.decision;
  }

  private async heldOut(iteration: number, runs: readonly Run[], signal: AbortSignal): Promise<RunOutcome[]> {
    const rewards = await this.runTasks(
      iteration,
      runs.map((r) => ({ version: r.arm === INCUMBENT ? this.incumbent : r.arm, taskId: r.taskId })),
      signal,
    );
    return runs.map((r, i) => ({ ...r, reward: rewards[i]! }));
  }

  private async gate(iteration: number, signal: AbortSignal): Promise<GateOutput> {
    const { world } = this.d;
    const decision =
      this.d.policy.rule === "paired"
        ? await this.gatePaired(iteration, signal)
        : (
            await drive(
              originalRule,
              { candidate: this.candidates[0]!, taskIds: world.testIds, best: this.best, trialBase: 0 },
              (runs) => this.heldOut(iteration, runs, signal),
            )
          ).decision;
    this.heldOutRuns += decision.heldOutRuns;
    this.winner = decision.winner;
    const previousBest = this.best;
    const arm = decision.arms.find((a) => a.arm === decision.winner) ?? decision.arms[0];
    const valScore = arm?.valScore ?? null;
    if (decision.winner && valScore !== null) this.best = Math.max(this.best, valScore);
    return {
      passed: decision.winner !== null,
      valScore,
      previousBest,
      suitePassed: 0,
      suiteTotal: 0,
      promoted: [],
      reasons: decision.winner ? [] : [decision.reason],
      rule: this.d.policy.rule,
      improved: decision.winner !== null,
      winner: decision.winner,
      stage: decision.stage,
      testRuns: decision.heldOutRuns,
    };
  }

  /** The sealed holdout, once: the final agent's run of each sealed task against the baseline's from prepare. */
  scoreHoldout(): HoldoutResult | null {
    if (!this.holdout) {
      const final = Object.fromEntries(this.d.world.holdoutIds.map((id) => [id, this.d.world.run(this.incumbent, id)]));
      this.holdout = pairedHoldout(this.d.runId, this.baselineHoldout, final);
    }
    return this.holdout;
  }

  steps(): Steps {
    const { world, clock, journal, policy, runId, root } = this.d;
    const p = world.params;
    return {
      check: createCheck(journal, clock),
      benchmark: async ({ iteration }, signal) => {
        const rewards = await this.runTasks(
          iteration,
          world.trainIds.map((taskId) => ({ version: this.incumbent, taskId })),
          signal,
        );
        this.trainRun = Object.fromEntries(world.trainIds.map((id, i) => [id, rewards[i]!]));
        const passed = rewards.filter((r) => r >= 0.5).length;
        const trainScore = rewards.reduce((a, b) => a + b, 0) / rewards.length;
        return { agentHash: this.incumbent, trainScore, passed, total: rewards.length };
      },
      analyze: async ({ iteration }, signal) => {
        const angle = decideAngle({
          journal,
          runId,
          iteration,
          now: clock.now(),
          startedAt: this.d.start,
          deadline: this.d.deadline,
          budgetUsd: p.budgetUsd,
          plateauRounds: policy.restart ? DEFAULT_PLATEAU.rounds : 0,
          codingModels: [],
          log: this.d.log,
          learningsFile: paths(root).learnings,
        });
        this.fresh = angle.restart;
        this.restarts = angle.restarts;
        await this.codingCall(iteration, p.analyzeMs, p.analyzeUsd, signal);
        this.hypotheses = world.hypotheses({
          k: policy.k,
          anchored: this.anchored,
          fresh: this.fresh,
          trainRun: this.trainRun,
        });
        return { patterns: this.hypotheses.map((c) => `pattern ${c}`) };
      },
      edit: async ({ iteration }, signal) => {
        const durations = this.hypotheses.map(() => this.timing.uniform(p.sessionMs[0], p.sessionMs[1]));
        this.candidates = await Promise.all(
          this.hypotheses.map(async (pattern, j) => {
            await this.codingCall(iteration, durations[j]!, p.sessionUsd, signal);
            const v = world.edit(this.incumbent, `v${this.nextId++}`, pattern, this.trainRun);
            if (classify(world, this.incumbent, v.id) === "gain") this.realProposed += 1;
            return v.id;
          }),
        );
        const summary = `${this.candidates.length} candidate(s) on ${this.hypotheses.map((c) => `pattern ${c}`).join(", ")}`;
        return {
          changed: true,
          hypothesis: summary,
          changeSummary: summary,
          commitMessage: summary,
          pattern: `pattern ${this.hypotheses[0]}`,
          needsFromHuman: "none",
        };
      },
      gate: ({ iteration }, signal) => this.gate(iteration, signal),
      record: async ({ gate }) => {
        if (!gate.passed || !this.winner) return { accepted: false, commit: null };
        const kind = classify(world, this.incumbent, this.winner);
        this.accepted.push({ id: this.winner, parent: this.incumbent, kind });
        const v = world.version(this.winner);
        if (v.kind === "fix") this.anchored = v.pattern;
        this.incumbent = this.winner;
        return { accepted: true, commit: this.winner };
      },
      learn: async (input) => {
        const output = learnIteration(root, input);
        journal.runs.putIteration({
          runId,
          iteration: input.iteration,
          outcome: !input.record ? "no_change" : input.record.accepted ? "accepted" : "rejected",
          valScore: input.gate?.valScore ?? null,
          bestBefore: input.bestBefore,
          summary: {
            spentUsd: journal.ledger.spend(runId, input.iteration).totalUsd,
            pattern: input.edit?.pattern ?? null,
          },
        });
        return output;
      },
      summarize: async () => {
        this.scoreHoldout();
        return { written: false };
      },
    };
  }
}
