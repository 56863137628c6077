/**
 * One simulated night of one policy: the real loop machine driven by the real daemon, every transition
 * committed to a real journal on a SQLite file in a temp dir, on simulated time (bench/night-clock.ts).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon } from "../src/daemon/daemon.ts";
import { Journal } from "../src/journal/journal.ts";
import { createLogger } from "../src/log.ts";
import { SimClock } from "./night-clock.ts";
import { type Policy, SimNight } from "./night-steps.ts";
import { World, type WorldParams } from "./night-world.ts";

/** 22:00 UTC: the night starts when the operator goes to bed. */
const NIGHT_START = Date.UTC(2026, 0, 1, 22);

export interface NightFigures {
  /** True gain of the morning's agent over the baseline, in points of mean reward over every unseen task. */
  gain: number;
  accepted: number;
  /** Candidates proposed that truly improved on their incumbent. */
  realProposed: number;
  noChange: number;
  harmful: number;
  trainOnly: number;
  usd: number;
  heldOutRuns: number;
  rounds: number;
  restarts: number;
  hours: number;
  /** The sealed holdout's estimate of the gain (points) and its error against the truth. */
  holdout: number | null;
  holdoutError: number | null;
  stopReason: string;
}

export async function simulateNight(policy: Policy, params: WorldParams, seed: number): Promise<NightFigures> {
  const dir = mkdtempSync(join(tmpdir(), "bench-night-"));
  mkdirSync(join(dir, "workspace"));
  const clock = new SimClock(NIGHT_START);
  const journal = Journal.open(join(dir, "journal.sqlite"), { now: () => clock.now() });
  const { log, place } = createLogger({ stdout: false, level: "warn" });
  const runId = `night-${policy.name}-${seed}`;
  const deadline = NIGHT_START + params.hours * 3_600_000;
  try {
    const world = new World(params, seed);
    const night = new SimNight({ world, policy, clock, journal, log, root: dir, runId, start: NIGHT_START, deadline });
    journal.runs.createRun(runId, { policy });
    const daemon = new Daemon(runId, { journal: journal.runs, log, place, steps: night.steps(), clock });
    // The morning: whatever round is in flight at the deadline is cut off, as the operator would find it.
    const morning = new AbortController();
    let cutOff = false;
    clock.sleep(deadline - NIGHT_START, morning.signal).then(
      () => {
        cutOff = true;
        return daemon.close();
      },
      () => undefined,
    );
    const result = await daemon.start({
      input: {
        runId,
        lastIteration: 0,
        bestValScore: night.baselineValScore,
        limits: { patience: Number.MAX_SAFE_INTEGER, maxIterations: null, budgetUsd: params.budgetUsd, deadline },
        stepAttempts: 1,
      },
    });
    morning.abort();
    const holdout = night.scoreHoldout();
    const gain = (world.truth(night.incumbent) - world.truth("v0")) * 100;
    const count = (k: string) => night.accepted.filter((a) => a.kind === k).length;
    return {
      gain,
      accepted: night.accepted.length,
      realProposed: night.realProposed,
      noChange: count("no-change"),
      harmful: count("harmful"),
      trainOnly: count("train-only"),
      usd: journal.ledger.spend(runId).totalUsd,
      heldOutRuns: night.heldOutRuns,
      rounds: result.context.finished,
      restarts: night.restarts,
      hours: (Math.min(clock.now(), deadline) - NIGHT_START) / 3_600_000,
      holdout: holdout ? holdout.diff * 100 : null,
      holdoutError: holdout ? holdout.diff * 100 - gain : null,
      stopReason: cutOff
        ? "deadline (round in flight cut off)"
        : (result.context.stopReason ?? `${result.status}: ${result.context.lastError?.message}`),
    };
  } finally {
    journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
