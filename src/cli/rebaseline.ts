import { relative } from "node:path";
import { assertSandboxReady } from "../benchmark/sealed/sandbox.ts";
import { systemClock } from "../clock.ts";
import { acquireLock } from "../daemon/lock.ts";
import { UserError } from "../errors.ts";
import { fitRewards, measureBaseline } from "../experiment/baseline.ts";
import { pinLockfiles } from "../experiment/lockfiles.ts";
import { dropOldScores, restartFromBaseline } from "../experiment/rebaseline.ts";
import { trustedSplit } from "../gate/records.ts";
import { openRepo } from "../git/repo.ts";
import { readResults, readSplit } from "../workspace/files.ts";
import { progressBar } from "./benchmark.ts";
import { openExperiment, openJournalAndLog, requirePrepared } from "./experiment.ts";
import { describeBaseline, describeFit, type PrepareOptions, preflightBaseline } from "./prepare.ts";
import { createRunnerFor } from "./services.ts";

export type RebaselineOptions = PrepareOptions;

export async function rebaselineCommand(options: RebaselineOptions): Promise<number> {
  const out = options.stderr ?? process.stderr;
  const clock = options.clock ?? systemClock;
  const exp = openExperiment(options);
  requirePrepared(exp);
  assertSandboxReady(exp.config, exp.root);
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
    const { abandoned, dropped, generation } = dropOldScores(journal);
    if (abandoned) out.write(`  abandoned run ${abandoned}: its scores came from the old scorer\n`);
    out.write(`  dropped  ${dropped} journaled task results (scored by the old scorer)\n`);
    out.write(`  opened   generation ${generation}: earlier runs stay in the journal as earlier generations\n`);

    // The split as the journal pinned it (the file is a view); the sealed holdout's baseline is measured too.
    const split = trustedSplit(journal, p.split, opened.log).value;
    const ids = [...split.train, ...split.test, ...(split.holdout ?? [])];
    out.write(`  running  baseline on ${ids.length} tasks (max_concurrency ${config.max_concurrency})\n`);
    const bar = progressBar(process.stderr.isTTY ? process.stderr : null);
    const runner = createRunnerFor(exp, opened, clock);
    const baseline = await measureBaseline({
      runner,
      journal,
      taskIds: ids,
      trials: config.trials,
      reuse: false,
      ...(bar ? { onProgress: bar.update } : {}),
    });
    bar?.done();

    const now = new Date(clock.now());
    const { archived, recorded } = restartFromBaseline({ ...exp, journal }, split, baseline, now);
    // The baseline was measured with the packages as they are: they are the pinned ones from now on.
    const locks = Object.keys(pinLockfiles(journal.pins, root, config));
    if (locks.length > 0) out.write(`  pinned   the agent's packages: ${locks.join(", ")}\n`);
    out.write(
      describeBaseline(recorded) +
        `  kept     ${rel(p.split)} (same split); the old results are in ${rel(archived)}; the suite starts empty\n`,
    );
    const fit = await fitRewards({
      runner,
      journal,
      baseline,
      trainIds: split.train,
      trials: config.trials,
      reuse: false,
    });
    out.write(describeFit(fit, (split.holdout ?? []).length));
    return 0;
  } finally {
    journal.close();
    release();
  }
}
