import { describe, expect, it } from "vitest";
import { prng } from "../../../src/benchmark/split.ts";
import { driftCheck } from "../../../src/gate/rules/drift.ts";
import { armLogE, type Bet, pairLogFactor } from "../../../src/gate/rules/evidence.ts";
import { DEFAULT_PAIRED, type PairedSetup, pairedRule } from "../../../src/gate/rules/paired.ts";
import { explainRound } from "../../../src/gate/rules/paired-explain.ts";
import { nextHistories } from "../../../src/gate/rules/paired-history.ts";
import { fitRewardModel } from "../../../src/gate/rules/reward-model.ts";
import {
  type Decision,
  driveSync,
  INCUMBENT,
  type Run,
  type RunOutcome,
  replay,
  runKey,
} from "../../../src/gate/rules/types.ts";
import { changed, draw, ids, sums, type Task, tasks, world } from "../../helpers/paired-world.ts";

const accepted = (d: Decision) => d.winner !== null;

function decide(setup: PairedSetup, run: (r: Run) => number | null) {
  return driveSync(pairedRule, setup, run);
}

/** A candidate whose train runs show a fix and whose held-out tasks are the incumbent's own. */
function trainOnly(seed: number, more: Partial<Parameters<typeof world>[0]> = {}) {
  const ts = tasks(40);
  return world({ seed, test: ts, candidate: ts, trainCandidate: changed(ts, 10), ...more });
}

describe("the paired rule: validity", () => {
  it("never accepts a candidate whose held-out results equal the incumbent's, however the history leans", () => {
    for (let seed = 0; seed < 20; seed++) {
      const ts = tasks(60);
      const { setup } = world({ seed, test: ts, candidate: ts, alpha: 0.5 });
      // A history that says every task always fails: every candidate pass would look like a fix.
      const history = { ...setup.history, test: Object.fromEntries(setup.taskIds.map((id) => [id, { s: 0, f: 9 }])) };
      const random = prng(seed + 99);
      const same = new Map<string, number>();
      const run = (r: Run) => {
        const key = `${r.taskId}/${r.trial}`;
        if (!same.has(key)) same.set(key, random() < 0.5 ? 1 : 0);
        return same.get(key)!;
      };
      const { decision } = decide({ ...setup, history }, run);
      expect(decision.winner).toBeNull();
      for (const arm of decision.arms) if (arm.figures.logE !== undefined) expect(arm.figures.logE).toBe(0);
    }
  });

  it("accepts no more than alpha of no-change candidates, with a stale history that invites it", () => {
    const alpha = 0.05;
    let accepts = 0;
    const rounds = 300;
    for (let seed = 0; seed < rounds; seed++) {
      // Train shows a fix (so the screen lets it through); held-out is the incumbent itself.
      const { setup, run } = trainOnly(seed, { alpha, badHour: 0.3 });
      accepts += accepted(decide(setup, run).decision) ? 1 : 0;
    }
    // Ville's inequality bounds it by alpha; three standard errors of slack for the Monte Carlo.
    expect(accepts / rounds).toBeLessThanOrEqual(alpha + 3 * Math.sqrt((alpha * (1 - alpha)) / rounds));
  });

  it("a pair's factor has mean 1 when the two runs are exchangeable, for any bet", () => {
    const bets: Bet[] = [
      { eligible: true, kappa: 0.3 },
      { eligible: true, kappa: 4 },
      { eligible: true, kappa: 60 },
    ];
    for (const bet of bets)
      for (const [a, b] of [
        [1, 0],
        [0.5, 1],
        [0.2, 0.35],
      ] as const) {
        const mean = (Math.exp(pairLogFactor(bet, a, b, 0.99)) + Math.exp(pairLogFactor(bet, b, a, 0.99))) / 2;
        expect(mean).toBeCloseTo(1, 12);
      }
  });

  it("an infrastructure error never raises the candidate's factor, on either side of a pair", () => {
    const bet: Bet = { eligible: true, kappa: 4 };
    expect(pairLogFactor(bet, null, 0, 0.99)).toBeLessThanOrEqual(0);
    expect(pairLogFactor(bet, 1, null, 0.99)).toBeLessThanOrEqual(0);
    expect(armLogE([pairLogFactor(bet, null, 0, 0.99)], [0.2])).toBeLessThanOrEqual(1e-12);
  });
});

describe("the paired rule: decisions", () => {
  it("accepts a fix of usually failing tasks", () => {
    let wins = 0;
    for (let seed = 0; seed < 10; seed++) {
      const ts = tasks(100);
      const fixed = changed(ts, 12);
      const { setup, run } = world({ seed, test: ts, candidate: fixed, trainCandidate: fixed });
      const { decision } = decide(setup, run);
      if (accepted(decision)) {
        wins += 1;
        const arm = decision.arms[0]!;
        expect(arm.valScore).toBeGreaterThan(0.5);
        expect(arm.improvement!.mean).toBeGreaterThan(0);
        expect(decision.alphaUsed).toBe(0.01);
      }
    }
    expect(wins).toBeGreaterThanOrEqual(8);
  });

  it("accepts a graded fix: deterministic partial credit raised to full on a few tasks", () => {
    let wins = 0;
    for (let seed = 0; seed < 10; seed++) {
      const ts = tasks(100, "levels");
      const fixed = changed(ts, 15);
      const { setup, run } = world({ seed, test: ts, candidate: fixed, trainCandidate: fixed });
      expect(setup.model.kind).toBe("levels");
      expect(setup.model.dispersion).toBeLessThan(0.3);
      wins += accepted(decide(setup, run).decision) ? 1 : 0;
    }
    expect(wins).toBeGreaterThanOrEqual(8);
  });

  it("rejects a net-negative trade: fixes of reliable failures, more breaks of reliable passes", () => {
    for (let seed = 0; seed < 10; seed++) {
      const ts = tasks(100);
      const trade = changed(ts, 9, 12);
      const { setup, run } = world({ seed, test: ts, candidate: trade, trainCandidate: trade });
      expect(accepted(decide(setup, run).decision)).toBe(false);
    }
  });

  it("train evidence of harm stops a candidate before any held-out run and uses none of the budget", () => {
    const ts = tasks(60);
    const broken = changed(ts, 0, 20);
    const { setup, run } = world({ seed: 3, test: ts, candidate: broken, trainCandidate: broken });
    const { decision, results } = decide(setup, run);
    expect(results).toEqual([]);
    expect(decision).toMatchObject({ winner: null, heldOutRuns: 0, alphaUsed: 0, stage: "train" });
    expect(decision.arms[0]!.reason).toMatch(/^train evidence shows harm/);
  });

  it("train evidence alone never accepts: a train-only fix with unchanged held-out results is rejected", () => {
    for (let seed = 0; seed < 10; seed++) {
      const ts = tasks(60);
      const { setup, run } = world({ seed, test: ts, candidate: ts, trainCandidate: changed(ts, 25) });
      const { decision } = decide(setup, run);
      expect(decision.winner).toBeNull();
      expect(decision.heldOutRuns).toBeGreaterThan(0);
    }
  });

  it("every held-out batch pairs the incumbent with each live candidate on the same tasks and trials", () => {
    const ts = tasks(40);
    const { setup, run } = world({ seed: 1, test: ts, candidate: changed(ts, 6) });
    let state = pairedRule.start(setup);
    for (let n = 0; n < 50; n++) {
      const action = pairedRule.next(state);
      if (action.kind === "decide") break;
      const byTask = new Map<string, string[]>();
      for (const r of action.runs)
        byTask.set(`${r.taskId}/${r.trial}`, [...(byTask.get(`${r.taskId}/${r.trial}`) ?? []), r.arm]);
      for (const arms of byTask.values()) expect(arms.sort()).toEqual(["c", INCUMBENT].sort());
      state = pairedRule.apply(
        state,
        action.runs.map((r) => ({ ...r, reward: run(r) })),
      );
    }
  });

  it("with the night's budget spent, makes no held-out run at all", () => {
    const ts = tasks(40);
    const { setup, run } = world({ seed: 2, test: ts, candidate: changed(ts, 10), trainCandidate: changed(ts, 10) });
    const { decision, results } = decide({ ...setup, alpha: 0 }, run);
    expect(results).toEqual([]);
    expect(decision).toMatchObject({ winner: null, alphaUsed: 0, stage: "budget" });
    expect(decision.reason).toMatch(/error budget is spent/);
  });

  it("a round whose runs run out before a decision says which bars the candidate had not reached", () => {
    const ts = tasks(40);
    const fixed = changed(ts, 3);
    const { setup, run } = world({ seed: 4, test: ts, candidate: fixed, trainCandidate: changed(ts, 10) });
    // Runs for the first pass and a few re-runs: too few to tell a small fix on 40 tasks.
    const { decision } = decide({ ...setup, maxRuns: 90 }, run);
    expect(decision).toMatchObject({ winner: null, stage: "budget" });
    expect(decision.reason).toMatch(
      /^the round's 90 held-out runs are spent; not enough evidence yet: .*e-value e\^-?\d+\.\d\d of the e\^\d+\.\d\d needed/,
    );
    expect(decision.arms[0]!.reason).toBe(decision.reason);
    // The rule's own val_score (what `gate --explain` replays) is the shell's: none for a pass cut short.
    const arm = decision.arms[0]!;
    expect(arm.figures.tasksPaired).toBeLessThan(ts.length);
    expect(arm.valScore).toBeNull();
  });

  it("refuses to decide above the infrastructure-error share", () => {
    const ts = tasks(40);
    const { setup } = world({ seed: 2, test: ts, candidate: changed(ts, 6), trainCandidate: changed(ts, 6) });
    const { decision } = decide(setup, (r) => (r.arm === "c" ? null : 1));
    expect(decision).toMatchObject({ winner: null, stage: "infra" });
    expect(decision.reason).toMatch(/infrastructure errors \(limit 20%\): no decision/);
  });
});

describe("the paired rule: resuming", () => {
  it("replaying the journaled results from any interruption reaches the same decision", () => {
    const ts = tasks(60);
    const fixed = changed(ts, 8);
    const { setup, run } = world({ seed: 11, test: ts, candidate: fixed, trainCandidate: fixed });
    const full = decide(setup, run);
    const answers = new Map(full.results.map((r) => [runKey(r), r.reward]));
    const oracle = (r: Run) => answers.get(runKey(r)) ?? Number.NaN;
    for (const cut of [0, 1, 7, Math.floor(full.results.length / 2), full.results.length - 3]) {
      // A SIGKILL after `cut` journaled results: replay them, then carry on.
      let state = replay(pairedRule, setup, full.results.slice(0, cut));
      for (;;) {
        const action = pairedRule.next(state);
        if (action.kind === "decide") {
          expect(action.decision).toEqual(full.decision);
          break;
        }
        state = pairedRule.apply(
          state,
          action.runs.map((r) => ({ ...r, reward: oracle(r) })),
        );
      }
    }
  });

  it("results one at a time, in any order within a batch, or twice, fold to the same state", () => {
    const ts = tasks(40);
    const { setup, run } = world({ seed: 5, test: ts, candidate: changed(ts, 6) });
    const full = decide(setup, run);
    let state = pairedRule.start(setup);
    for (;;) {
      const action = pairedRule.next(state);
      if (action.kind === "decide") break;
      const batch: RunOutcome[] = full.results.filter((r) => action.runs.some((a) => runKey(a) === runKey(r)));
      for (const r of [...batch].reverse()) state = pairedRule.apply(state, [r, r]);
    }
    expect(pairedRule.next(state)).toEqual({ kind: "decide", decision: full.decision });
  });

  it("a result nobody asked for is an error, not a silent change of the decision", () => {
    const ts = tasks(20);
    const { setup } = world({ seed: 1, test: ts, candidate: ts, trainCandidate: changed(ts, 8) });
    const state = pairedRule.start(setup);
    expect(pairedRule.next(state).kind).toBe("run");
    expect(() => pairedRule.apply(state, [{ arm: "c", taskId: "t0", trial: 999, reward: 1 }])).toThrow(/out of step/);
  });

  it("next() is idempotent and apply() leaves the state it was given untouched", () => {
    const ts = tasks(20);
    const { setup, run } = world({ seed: 4, test: ts, candidate: ts, trainCandidate: changed(ts, 8) });
    const state = pairedRule.start(setup);
    const first = pairedRule.next(state);
    expect(pairedRule.next(state)).toEqual(first);
    if (first.kind !== "run") throw new Error("expected a batch");
    const before = JSON.stringify([...state.pending]);
    pairedRule.apply(
      state,
      first.runs.map((r) => ({ ...r, reward: run(r) })),
    );
    expect(JSON.stringify([...state.pending])).toBe(before);
    expect(pairedRule.next(state)).toEqual(first);
  });
});

/**
 * A race of the given arms (held-out truth) whose train runs are the incumbent's with `lifts[arm]` of its failed
 * tasks passed instead: the train ranking is set by hand.
 */
function ranked(o: {
  seed: number;
  test: Task[];
  arms: Record<string, Task[]>;
  maxRuns: number;
  lifts: Record<string, number>;
}) {
  const { seed, test, arms, maxRuns, lifts } = o;
  const base = world({ seed, test, candidate: test, candidates: Object.keys(arms), arms, maxRuns });
  const inc = base.setup.train.incumbent;
  const failed = Object.keys(inc).filter((id) => inc[id] === 0);
  const lifted = (k: number) => ({ ...inc, ...Object.fromEntries(failed.slice(0, k).map((id) => [id, 1])) });
  const candidates = Object.fromEntries(Object.entries(lifts).map(([arm, k]) => [arm, lifted(k)]));
  return { base, setup: { ...base.setup, train: { incumbent: inc, candidates } }, lifted };
}

describe("the paired rule: a race of K candidates", () => {
  it("accepts at most one, counts the candidates raced in the bar, and names a runner-up", () => {
    const ts = tasks(100);
    const big = changed(ts, 14);
    const small = changed(ts, 10);
    const { setup: base, run } = world({
      seed: 8,
      test: ts,
      candidate: big,
      trainCandidate: big,
      candidates: ["a", "b", "n"],
      arms: { a: big, b: small, n: ts },
      maxRuns: 800,
    });
    // Every survivor the runs pay for races (gate_race_width 0).
    const setup = { ...base, params: { ...base.params, raceWidth: 0 } };
    const { decision, state } = decide(setup, run);
    expect(state.plan.threshold).toBeCloseTo(Math.log(state.plan.raced.length / setup.alpha), 12);
    expect(decision.arms.filter((a) => a.verdict === "winner").length).toBeLessThanOrEqual(1);
    expect(decision.winner).not.toBe("n");
  });

  it("races only the survivors the round's held-out runs pay for, the best on train first", () => {
    const ts = tasks(100);
    const big = changed(ts, 14);
    const arms = { a: big, b: big, c: big, d: big };
    const { base, setup } = ranked({ seed: 3, test: ts, arms, maxRuns: 600, lifts: { a: 10, b: 20, c: 15, d: 12 } });
    // 600 runs pay for 2 passes of 3 arms (two candidates and the incumbent), when the width allows two.
    const wide = { ...setup, params: { ...setup.params, raceWidth: 0 } };
    const { state, decision } = decide(wide, base.run);
    expect(state.plan.raced).toEqual(["b", "c"]);
    expect(state.plan.threshold).toBeCloseTo(Math.log(2 / setup.alpha), 12);
    for (const arm of ["a", "d"]) {
      const v = decision.arms.find((x) => x.arm === arm)!;
      expect(v).toMatchObject({ verdict: "rejected", stage: "budget", runs: 0 });
      expect(v.reason).toMatch(
        /^not raced: the round's 600 held-out runs pay for a race of 2 of the 4 train survivors/,
      );
    }
    expect(decision.winner === null || ["b", "c"].includes(decision.winner)).toBe(true);
    const all = decide({ ...setup, params: { ...setup.params, racePasses: 0 } }, base.run);
    expect(all.state.plan.raced).toEqual(["a", "b", "c", "d"]);
    // Runs that cannot pay for one race stay in the bank: no held-out run; a lone candidate is never held back.
    const broke = decide({ ...setup, maxRuns: 300 }, base.run);
    expect(broke.state.plan.raced).toEqual([]);
    expect(broke.decision).toMatchObject({ winner: null, stage: "budget", heldOutRuns: 0 });
    expect(broke.decision.reason).toMatch(/^the round's 300 held-out runs cannot pay for a race of even one of the 4/);
    const lone = world({ seed: 3, test: ts, candidate: big, trainCandidate: big, maxRuns: 100 });
    expect(decide(lone.setup, lone.run).state.plan.raced).toEqual(["c"]);
  });

  it("by default races only the best on train, at the bar and with the runs of a round of one", () => {
    const ts = tasks(100);
    const big = changed(ts, 14);
    // The best on train is listed last and changes nothing held out: it races, and is refused.
    const arms = { a: big, b: big, c: big, d: ts };
    const lifts = { a: 12, b: 14, c: 10, d: 25 };
    const { base, setup, lifted } = ranked({ seed: 5, test: ts, arms, maxRuns: 1000, lifts });
    const { state, decision } = decide(setup, base.run);
    expect(state.plan.raced).toEqual(["d"]);
    // The multiplicity correction counts the arm raced, not the four screened: the bar of a round of one.
    expect(state.plan.threshold).toBeCloseTo(Math.log(1 / setup.alpha), 12);
    // The round's allowance is a round of one's (4 passes of one pair), not the 1000 the four were given.
    expect(state.plan.maxRuns).toBe(400);
    expect(decision.heldOutRuns).toBeLessThanOrEqual(400);
    expect(decision.heldOutRuns).toBeGreaterThan(0);
    expect(decision.winner).toBeNull();
    for (const arm of ["a", "b", "c"]) {
      const v = decision.arms.find((x) => x.arm === arm)!;
      expect(v).toMatchObject({ verdict: "rejected", stage: "budget", runs: 0 });
      expect(v.reason).toMatch(/pay for a race of 1 of the 4 train survivors, .* \(at most 1 race\)$/);
    }
    // Two may race when the width allows it: each then needs 2/alpha, and the round may spend for two pairs.
    const two = decide({ ...setup, params: { ...setup.params, raceWidth: 2 } }, base.run);
    expect(two.state.plan.raced).toEqual(["d", "b"]);
    expect(two.state.plan.threshold).toBeCloseTo(Math.log(2 / setup.alpha), 12);
    expect(two.state.plan.maxRuns).toBe(600);
    // A real fix at the top of the train ranking is accepted with its round-of-one runs.
    const fixFirst = { ...setup, train: { ...setup.train, candidates: { ...setup.train.candidates, a: lifted(30) } } };
    const won = decide(fixFirst, base.run);
    expect(won.state.plan.raced).toEqual(["a"]);
    expect(won.decision.winner).toBe("a");
    expect(won.decision.heldOutRuns).toBeLessThanOrEqual(400);
  });

  it("a race of no-change candidates accepts nothing", () => {
    for (let seed = 0; seed < 8; seed++) {
      const ts = tasks(40);
      const { setup, run } = trainOnly(seed, {
        candidates: ["a", "b", "c", "d"],
        arms: { a: ts, b: ts, c: ts, d: ts },
        alpha: 0.05,
      });
      expect(decide(setup, run).decision.winner).toBeNull();
    }
  });
});

describe("the drift check", () => {
  const ts: Task[] = Array.from({ length: 100 }, (_, i) => ({ p: [0.92, 0.15, 0.5, 0.6][i % 4]!, lo: 0, hi: 1 }));
  const random = prng(7);
  const runsOf = (shift: number) => ts.map((t) => draw(t, random, shift));

  /** The drift check of a fresh run against a two-run baseline measured `shift` lower. */
  const checkAfter = (shift: number) => {
    const baseline = [runsOf(shift), runsOf(shift)];
    const history = Object.fromEntries(ids(100).map((id, i) => [id, sums(baseline.map((r) => r[i]!))]));
    const model = fitRewardModel(Object.fromEntries(ids(100).map((id, i) => [id, baseline.map((r) => r[i]!)])));
    const now = runsOf(0);
    return driftCheck(model, history, Object.fromEntries(ids(100).map((id, i) => [id, now[i]!])), DEFAULT_PAIRED);
  };

  it("fires on a bad-hour history (every task 30 points lower) and drops it", () => {
    const d = checkAfter(0.3);
    expect(d.z).toBeGreaterThan(DEFAULT_PAIRED.dropAbove);
    expect(d.weight).toBe(0);
    expect(d.shift).toBeGreaterThan(0.15);
  });

  it("keeps a history measured in the same world", () => {
    expect(checkAfter(0).weight).toBe(1);
  });

  it("a neutral candidate after a bad-hour baseline is not accepted", () => {
    for (let seed = 0; seed < 10; seed++) {
      const ts2 = tasks(100);
      const { setup, run } = world({ seed, test: ts2, candidate: ts2, badHour: 0.3, alpha: 0.05 });
      const { decision, state } = decide(setup, run);
      expect(state.plan.trainDrift.z).toBeGreaterThan(DEFAULT_PAIRED.keepBelow);
      expect(state.plan.trainDrift.weight).toBeLessThan(1);
      expect(decision.winner).toBeNull();
    }
  });
});

describe("nextHistories", () => {
  it("rejected: the incumbent's fresh runs join its history, nothing of the candidate", () => {
    const ts = tasks(20);
    const { setup, run } = world({ seed: 2, test: ts, candidate: ts });
    const { state, decision } = decide(setup, run);
    const h = nextHistories(state, decision);
    for (const id of setup.taskIds) {
      const fresh = (state.draws.get(INCUMBENT)!.get(id) ?? []).filter((x): x is number => typeof x === "number");
      const before = setup.history.test[id]!;
      expect(h.test[id]!.s + h.test[id]!.f).toBeCloseTo(before.s + before.f + fresh.length, 12);
    }
  });

  it("after a bad-hour baseline the reward model's prior moves to where the world is now", () => {
    const ts = tasks(100);
    const { setup, run } = world({ seed: 1, test: ts, candidate: ts, badHour: 0.3 });
    const { state, decision } = decide(setup, run);
    const { model } = nextHistories(state, decision);
    const mean = (m: typeof model) => m.prior.a / (m.prior.a + m.prior.b);
    expect(mean(model)).toBeGreaterThan(mean(setup.model) + 0.05);
  });

  it("accepted: a task the winner changed starts over from the winner's runs", () => {
    const ts = tasks(100);
    const fixed = changed(ts, 12);
    for (let seed = 0; seed < 5; seed++) {
      const { setup, run } = world({ seed, test: ts, candidate: fixed, trainCandidate: fixed });
      const { state, decision } = decide(setup, run);
      if (!decision.winner) continue;
      const h = nextHistories(state, decision);
      const mine = state.draws.get("c")!;
      const id = setup.taskIds.find((t, i) => fixed[i]!.p !== ts[i]!.p && (mine.get(t)?.length ?? 0) >= 3)!;
      const runs = mine.get(id)!.filter((x): x is number => typeof x === "number");
      expect(h.test[id]).toEqual(sums(runs));
      return;
    }
    throw new Error("no seed accepted the fix");
  });
});

describe("explainRound", () => {
  it("says what the rule knew and why each arm stopped, in ids and numbers only", () => {
    const ts = tasks(60);
    const fixed = changed(ts, 8);
    const { setup, run } = world({ seed: 11, test: ts, candidate: fixed, trainCandidate: fixed });
    const { state, decision } = decide(setup, run);
    const text = explainRound(state, decision);
    expect(text).toMatch(/^Paired rule: 1 candidate\(s\), 1 raced on 60 held-out task\(s\)/);
    expect(text).toMatch(/Rewards: pass\/fail rewards;/);
    expect(text).toMatch(/Drift check: .* the history kept 100% of its weight\./);
    expect(text).toMatch(/Night budget: this round could use alpha 1\.00e-2 and used 1\.00e-2/);
    expect(text).toMatch(/paired first pass: [+-]\d\.\d{4} over 60 task\(s\), 95% interval/);
    for (const id of setup.taskIds) expect(text).not.toMatch(new RegExp(`\\b${id}\\b`));
  });
});
