import type { LoopInput } from "../../machines/loop.ts";
import type { Limits } from "../../machines/stop-rules.ts";
import type { Config } from "../config/schema.ts";
import { bestSoFar, pinLegacyBaseline, trustedSplit } from "../gate/records.ts";
import type { Repo } from "../git/repo.ts";
import type { RunRow, Stores } from "../journal/stores.ts";
import { readEntries } from "../learnings/learnings.ts";
import type { Logger } from "../log.ts";
import { loopIterationOf, readResults } from "../workspace/files.ts";
import type { Paths } from "../workspace/paths.ts";
import { reapProcessGroups } from "./process-groups.ts";
import { describeFinding, reconcileWorkspace } from "./reconcile.ts";

/**
 * Where a run starts: its number, the best score it must beat and its limits, all from the journal. A
 * resumed run keeps its persisted state and only takes the limits the config sets now.
 */

/** The run's stop limits; `max_hours` counts from the run's start, and the earlier of it and `deadline` holds. */
export function limitsOf(c: Config, runStartedAt: number): Limits {
  const ends = [
    ...(c.deadline ? [Date.parse(c.deadline)] : []),
    ...(c.max_hours === null ? [] : [runStartedAt + c.max_hours * 3_600_000]),
  ];
  return {
    patience: c.patience,
    maxIterations: c.max_iterations,
    budgetUsd: c.budget_usd,
    deadline: ends.length ? Math.min(...ends) : null,
  };
}

/**
 * An experiment prepared before the records were pinned kept them only as files: on its first start, the
 * split and the baseline as the files hold them become the pins; from then on the files are views. (The
 * suite is pinned by the gate's first read, which reports a damaged suite.json where it pauses.)
 */
export function pinFirstRecords(journal: Pick<Stores, "pins">, paths: Paths, log: Logger): void {
  if (!journal.pins.pinned("split")) trustedSplit(journal, paths.split, log);
  pinLegacyBaseline(journal, paths.results);
}

/** A new run's input: numbered on from every iteration the experiment has seen, against the journal's best. */
export function startingPoint(o: {
  journal: Pick<Stores, "runs" | "pins" | "gateRecords">;
  paths: Paths;
  config: Config;
  run: RunRow;
}): LoopInput {
  const { journal, paths, config, run } = o;
  return {
    runId: run.id,
    // An adopted experiment's iterations are numbered on from the original's learnings.md entries.
    lastIteration: Math.max(
      0,
      ...readResults(paths.results).map(loopIterationOf),
      ...journal.runs.iterationNumbers(),
      ...readEntries(paths.learnings).map((e) => e.iteration),
    ),
    bestValScore: bestSoFar(journal),
    limits: limitsOf(config, run.createdAt),
    stepAttempts: config.step_attempts,
  };
}

/**
 * Repairs before anything runs: process groups a killed daemon left, git locks a killed commit left, and
 * workspace files that disagree with the journal (a torn, truncated or duplicated row or entry). Returns one
 * line per repair, each with its file and line.
 */
export async function startUpRepairs(o: {
  journal: Pick<Stores, "runs" | "pins" | "processGroups">;
  repo: Repo;
  paths: Paths;
  log: Logger;
}): Promise<string[]> {
  const repairs = reapProcessGroups(o.journal.processGroups, o.log).map(
    (g) => `process group ${g.pgid} (${g.label}): ${g.processes} process(es) a killed daemon left; killed`,
  );
  for (const lock of await o.repo.repairStaleLocks()) repairs.push(`.git/${lock}: left by a killed git; removed`);
  for (const finding of await reconcileWorkspace({ paths: o.paths, journal: o.journal, repo: o.repo })) {
    repairs.push(describeFinding(finding));
  }
  return repairs;
}
