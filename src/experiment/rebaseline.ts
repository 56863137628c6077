import { existsSync, renameSync, rmSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import { saveSuite } from "../gate/records.ts";
import type { Stores } from "../journal/stores.ts";
import { initResults, writeTrainResults } from "../workspace/files.ts";
import type { Paths } from "../workspace/paths.ts";
import { type MeasuredBaseline, type RecordedBaseline, recordBaseline } from "./baseline.ts";

/**
 * Rebaselining after a scorer changed: every journaled task result was scored by the old scorer, so all are
 * dropped (and an unfinished run abandoned), and the score history starts over in a new generation (earlier
 * runs stay in the journal, as an earlier generation); the new baseline restarts the suite, the train results,
 * the baseline traces and results.tsv, the old results.tsv kept beside it.
 */

export function dropOldScores(journal: Pick<Stores, "runs" | "taskResults" | "gateRecords" | "transaction">): {
  abandoned: string | null;
  dropped: number;
  generation: number;
} {
  const { runs, taskResults, gateRecords } = journal;
  return journal.transaction(() => {
    const unfinished = runs.unfinishedRun();
    if (unfinished) {
      runs.setRunStatus(unfinished.id, "abandoned", {
        stopReason: "abandoned by rebaseline (scored by the old scorer)",
      });
    }
    gateRecords.clearHistory();
    const dropped = taskResults.clearTaskResults();
    const generation = runs.openGeneration("rebaseline: the scorer changed, the baseline was measured again");
    return { abandoned: unfinished?.id ?? null, dropped, generation };
  });
}

export function restartFromBaseline(
  exp: { config: Config; paths: Paths; journal: Pick<Stores, "ledger" | "pins"> },
  split: { train: string[]; test: string[] },
  baseline: MeasuredBaseline,
  now: Date,
): { archived: string; recorded: RecordedBaseline } {
  const { config, paths: p, journal } = exp;
  const trainResults = Object.fromEntries(split.train.map((id) => [id, baseline.results[id] ?? null]));
  writeTrainResults(p.trainResults, trainResults, now);
  saveSuite(journal, p.suite, { tasks: [], threshold: config.threshold, last_results: {} });
  // The baseline traces are the reference for "what changed": the next train run writes them afresh.
  rmSync(p.tracesBaseline, { recursive: true, force: true });
  const archived = p.results.replace(
    /\.tsv$/,
    `.before-rebaseline-${now.toISOString().replace(/[-:]/g, "").slice(0, 15)}.tsv`,
  );
  if (existsSync(p.results)) renameSync(p.results, archived);
  initResults(p.results);
  const recorded = recordBaseline({ journal, results: p.results, split, baseline, evalsTotal: 0, now });
  return { archived, recorded };
}
