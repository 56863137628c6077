/**
 * `rebaseline`: the baseline again, with the benchmark's scorer as it is now (after fixing a scorer that
 * scored 0 everywhere, say). Every journaled task result was scored by the old scorer, so all are dropped;
 * the accepted agent is measured afresh on the same split (nothing the coding agent has seen moves into
 * test), the suite starts empty, the gate's history of the incumbent and its earlier decisions no longer
 * count, and results.tsv starts over from the new iteration 0, the old one kept.
 */
import { existsSync, renameSync, rmSync } from "node:fs";
import { relative } from "node:path";
import { assertSandboxReady } from "../benchmark/sandbox.ts";
import { systemClock } from "../clock.ts";
import { acquireLock } from "../daemon/lock.ts";
import { UserError } from "../errors.ts";
import { measureBaseline, recordBaseline } from "../experiment/baseline.ts";
import { saveSuite, trustedSplit } from "../gate/records.ts";
import { openRepo } from "../git/repo.ts";
import { initResults, readResults, readSplit, writeTrainResults } from "../workspace/files.ts";
import { progressBar } from "./benchmark.ts";
import { openExperiment, openJournalAndLog, requirePrepared } from "./experiment.ts";
import { describeBaseline, type PrepareOptions, preflightBaseline } from "./prepare.ts";
import { createRunnerFor } from "./services.ts";

export type RebaselineOptions = PrepareOptions;

export async function rebaselineCommand(options: RebaselineOptions): Promise<number> {
  const out = options.stderr ?? process.stderr;
  const clock = options.clock ?? systemClock;
  const exp = openExperiment(options);
  requirePrepared(exp);
  assertSandboxReady(exp.config);
  const { root, config, paths: p } = exp;
  const rel = (file: string) => relative(root, file);
  // Read and check everything before the first write.
  if (!readSplit(p.split)) throw new UserError("RUN_STATE", `${rel(p.split)} is missing; run \`auto-harness prepare\``);
  readResults(p.results);
  if (await openRepo(root).fileDiffersFromHead(p.agentRel)) {
    throw new UserError(
      "GIT_STATE",
      `${p.agentRel} has uncommitted changes; the baseline measures the accepted agent: commit or restore it first (git checkout -- ${p.agentRel})`,
    );
  }
  await preflightBaseline(exp, options, clock);

  const release = acquireLock(p.lock, "rebaseline");
  const opened = openJournalAndLog(exp, { stdout: false });
  const { journal } = opened;
  try {
    const unfinished = journal.unfinishedRun();
    if (unfinished) {
      journal.setRunStatus(unfinished.id, "abandoned", {
        stopReason: "abandoned by rebaseline (scored by the old scorer)",
      });
      out.write(`  abandoned run ${unfinished.id}: its scores came from the old scorer\n`);
    }
    const dropped = journal.clearScores();
    journal.putFact("rebaselined_at", clock.now());
    out.write(`  dropped  ${dropped} journaled task results (scored by the old scorer)\n`);

    // The split as the journal pinned it (the file is a view); the sealed holdout's baseline is measured too.
    const split = trustedSplit(journal, p.split, opened.log).value;
    const ids = [...split.train, ...split.test, ...(split.holdout ?? [])];
    out.write(`  running  baseline on ${ids.length} tasks (max_concurrency ${config.max_concurrency})\n`);
    const bar = progressBar(process.stderr.isTTY ? process.stderr : null);
    const baseline = await measureBaseline({
      runner: createRunnerFor(exp, opened, clock),
      journal,
      taskIds: ids,
      trials: config.trials,
      reuse: false,
      ...(bar ? { onProgress: bar.update } : {}),
    });
    bar?.done();

    const now = new Date(clock.now());
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
    out.write(
      describeBaseline(recorded) +
        `  kept     ${rel(p.split)} (same split); the old results are in ${rel(archived)}; the suite starts empty\n`,
    );
    return 0;
  } finally {
    journal.close();
    release();
  }
}
