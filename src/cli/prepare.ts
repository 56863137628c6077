import { relative } from "node:path";
import { assertSandboxReady } from "../benchmark/sealed/sandbox.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import { classifyFault } from "../errors.ts";
import {
  fitRewards,
  HOLDOUT_GAIN,
  measureBaseline,
  type RecordedBaseline,
  recordBaseline,
} from "../experiment/baseline.ts";
import { pinLockfiles } from "../experiment/lockfiles.ts";
import {
  agentSourceFile,
  checkAgentSource,
  pinBaselineSplit,
  scaffoldExperiment,
  smallSplitWarning,
} from "../experiment/prepare.ts";
import { describeRewardModel } from "../gate/rules/reward-model.ts";
import { openRepo } from "../git/repo.ts";
import { readSplit, readSuite } from "../workspace/files.ts";
import { progressBar } from "./benchmark.ts";
import { type GlobalOptions, openExperiment, openJournalAndLog } from "./experiment.ts";
import { checkInputs, checkWritable } from "./input-checks.ts";
import { PREPARE_CHECKS, type PreflightCheck, runPreflight } from "./preflight.ts";
import { createRunnerFor } from "./services.ts";

/** The line prepare and rebaseline print once iteration 0 is recorded. */
export const describeBaseline = (r: RecordedBaseline): string =>
  `  recorded iteration 0: val_score ${(r.valScore ?? 0).toFixed(4)} on the test split, train ${(r.trainScore ?? 0).toFixed(4)}; the baseline cost $${r.spend.toFixed(2)}\n`;

export interface PrepareOptions extends GlobalOptions {
  /** Human-readable progress lines. */
  stderr?: NodeJS.WritableStream;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  preflight?: readonly PreflightCheck[];
}

/** The checks before a baseline is measured (prepare, rebaseline): nothing is written when one refuses. */
export async function preflightBaseline(
  exp: { root: string; config: Config },
  options: PrepareOptions,
  clock: Clock,
): Promise<void> {
  await runPreflight(options.preflight ?? PREPARE_CHECKS, {
    root: exp.root,
    config: exp.config,
    env: options.env ?? process.env,
    clock,
    resuming: null,
    journal: null,
  });
}

/** The lines prepare and rebaseline print once the reward model is fitted. */
export const describeFit = (fit: Awaited<ReturnType<typeof fitRewards>>, holdout: number): string =>
  `  fitted   the gate's reward model: ${describeRewardModel(fit.model)}\n` +
  `  proposed a sealed holdout of ${fit.holdout.tasks} task(s) to tell a +${HOLDOUT_GAIN} gain from none (this experiment seals ${holdout}; set holdout_fraction to change it)\n`;

/** A full disk or a read-only file system met mid-way: prepare is run again, there is no run to resume. */
export const PREPARE_AGAIN = "then run `auto-harness prepare` again: it keeps what it made and goes on from there";

/** Idempotent: every part that already exists is kept, and says so. */
export async function prepareCommand(options: PrepareOptions): Promise<number> {
  try {
    return await prepareSteps(options);
  } catch (error) {
    throw classifyFault(error, "workspace/journal.sqlite", PREPARE_AGAIN) ?? error;
  }
}

async function prepareSteps(options: PrepareOptions): Promise<number> {
  const out = options.stderr ?? process.stderr;
  const clock = options.clock ?? systemClock;
  const exp = openExperiment(options);
  assertSandboxReady(exp.config, exp.root);
  const { root, config, paths: p } = exp;
  const rel = (file: string) => relative(root, file);
  checkAgentSource(exp);
  if (!readSplit(p.split)) {
    // The user's files first: a broken agent, tasks file, scorer or command stops here, before anything is written.
    await checkInputs(exp, { command: "prepare", agentFile: agentSourceFile(exp) });
    await preflightBaseline(exp, options, clock);
  } else {
    checkWritable([root, p.workspace], "prepare");
  }
  const did = (what: string) => out.write(`  created  ${what}\n`);
  const kept = (what: string) => out.write(`  kept     ${what} (exists)\n`);

  await scaffoldExperiment({ ...exp, repo: openRepo(root) }, (e) => (e.created ? did(e.what) : kept(e.what)));

  if (readSplit(p.split)) {
    kept(`${rel(p.split)} and the baseline`);
    return 0;
  }
  const opened = openJournalAndLog(exp, { stdout: false });
  try {
    const runner = createRunnerFor(exp, opened, clock);
    const all = await runner.listTasks();
    out.write(`  running  baseline on ${all.length} tasks (max_concurrency ${config.max_concurrency})\n`);
    // The split does not exist yet: run every task the private way (no traces), as test tasks are.
    const bar = progressBar(process.stderr.isTTY ? process.stderr : null);
    const baseline = await measureBaseline({
      runner,
      journal: opened.journal,
      taskIds: all,
      trials: config.trials,
      ...(bar ? { onProgress: bar.update } : {}),
    });
    bar?.done();
    const { split, holdout } = pinBaselineSplit(
      { ...exp, journal: opened.journal },
      baseline,
      all.length,
      new Date(clock.now()),
    );
    did(
      `${rel(p.split)}: ${split.train.length} train, ${split.test.length} test` +
        (holdout.length
          ? `, ${holdout.length} sealed holdout (scored once, at the end of a run)`
          : `, no sealed holdout (${all.length} tasks; holdout_fraction applies from 60)`) +
        (split.excluded.length
          ? `, ${split.excluded.length} excluded (infrastructure errors: ${split.excluded.join(", ")})`
          : ""),
    );
    const small = smallSplitWarning(split.test.length);
    if (small) out.write(`  warning  ${small}\n`);
    const suite = readSuite(p.suite, config.threshold);
    const recorded = recordBaseline({
      journal: opened.journal,
      results: p.results,
      split,
      baseline,
      evalsTotal: suite.tasks.length,
      now: new Date(clock.now()),
    });
    out.write(describeBaseline(recorded));
    // The gate's model of the rewards needs the noise of a run: the train split once more.
    out.write(`  running  the ${split.train.length} train tasks once more, to measure the noise of a run\n`);
    const fit = await fitRewards({
      runner,
      journal: opened.journal,
      baseline,
      trainIds: split.train,
      trials: config.trials,
    });
    out.write(describeFit(fit, holdout.length));
    const locks = Object.keys(pinLockfiles(opened.journal.pins, root, config));
    if (locks.length > 0) did(`pins of the agent's packages: ${locks.join(", ")} (a change needs \`rebaseline\`)`);
    return 0;
  } finally {
    opened.journal.close();
  }
}
