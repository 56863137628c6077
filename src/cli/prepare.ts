import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, extname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { assertSandboxReady } from "../benchmark/sandbox.ts";
import { stratifiedSplit } from "../benchmark/split.ts";
import { type Clock, systemClock } from "../clock.ts";
import { UserError } from "../errors.ts";
import { measureBaseline, type RecordedBaseline, recordBaseline } from "../experiment/baseline.ts";
import { pinSplit } from "../gate/records.ts";
import { openRepo } from "../git/repo.ts";
import { LEARNINGS_HEADER } from "../learnings/learnings.ts";
import {
  initResults,
  readResults,
  readSplit,
  readSuite,
  readTrainResults,
  writeSuite,
  writeTrainResults,
} from "../workspace/files.ts";
import { progressBar } from "./benchmark.ts";
import { type GlobalOptions, openExperiment, openJournalAndLog } from "./experiment.ts";
import { PREPARE_CHECKS, type PreflightCheck, runPreflight } from "./preflight.ts";
import { createRunnerFor } from "./services.ts";

/** The harness's own templates, used when the experiment directory has none of its own. */
const HARNESS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** holdout_fraction null: 0.2 with at least 60 tasks, else none (too few to seal any away). */
export function holdoutFraction(configured: number | null | undefined, tasks: number): number {
  if (configured !== null && configured !== undefined) return configured;
  return tasks >= 60 ? 0.2 : 0;
}

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

/** Idempotent: every part that already exists is kept, and says so. */
export async function prepareCommand(options: PrepareOptions): Promise<number> {
  const out = options.stderr ?? process.stderr;
  const clock = options.clock ?? systemClock;
  const exp = openExperiment(options);
  assertSandboxReady(exp.config);
  const { root, config, paths: p } = exp;
  const rel = (file: string) => relative(root, file);
  const benchmark = config.benchmark;
  const agentRel = p.agentRel;
  // A Python agent file starts from the benchmark's Python template, a TypeScript one from its .ts.
  const ext = extname(agentRel);
  const template = join(p.agentTemplates, `${benchmark}${ext}`);
  const builtInTemplate = join(HARNESS_ROOT, "agent", "templates", `${benchmark}${ext}`);
  // Everything that can refuse does so before the first write.
  if (!existsSync(p.agentFile) && !existsSync(template) && !existsSync(builtInTemplate)) {
    throw new UserError(
      "RUN_STATE",
      `no agent: benchmark \`${benchmark}\` has no template (${rel(template)}); write ${agentRel} yourself`,
    );
  }
  if (!readSplit(p.split)) {
    await runPreflight(options.preflight ?? PREPARE_CHECKS, {
      root,
      config,
      env: options.env ?? process.env,
      clock,
      resuming: null,
      journal: null,
    });
  }
  const did = (what: string) => out.write(`  created  ${what}\n`);
  const kept = (what: string) => out.write(`  kept     ${what} (exists)\n`);

  const repo = openRepo(root);
  if (!(await repo.isRepo())) {
    await repo.init();
    did("git repository");
  }

  mkdirSync(p.workspace, { recursive: true });
  const gitignore = join(root, ".gitignore");
  const ignored = existsSync(gitignore) ? readFileSync(gitignore, "utf8") : "";
  if (!/^\/?workspace\/?$/m.test(ignored)) {
    appendFileSync(gitignore, `${ignored === "" || ignored.endsWith("\n") ? "" : "\n"}workspace/\n`);
    did(".gitignore entry workspace/");
  }

  // Existing files are read first: a damaged one stops prepare before anything else is written.
  if (existsSync(p.results)) readResults(p.results);
  if (existsSync(p.suite)) readSuite(p.suite);
  if (initResults(p.results)) did(rel(p.results));
  else kept(rel(p.results));
  if (!existsSync(p.suite)) {
    writeSuite(p.suite, { tasks: [], threshold: config.threshold, last_results: {} });
    did(rel(p.suite));
  } else kept(rel(p.suite));
  if (!existsSync(p.learnings)) {
    writeFileSync(p.learnings, LEARNINGS_HEADER);
    did(rel(p.learnings));
  } else kept(rel(p.learnings));

  if (!existsSync(template) && existsSync(builtInTemplate) && resolve(template) !== builtInTemplate) {
    mkdirSync(p.agentTemplates, { recursive: true });
    copyFileSync(builtInTemplate, template);
    did(rel(template));
  }
  if (!existsSync(p.agentFile)) {
    if (!existsSync(template)) {
      throw new UserError(
        "RUN_STATE",
        `no agent: benchmark \`${benchmark}\` has no template (${rel(template)}); write ${agentRel} yourself`,
      );
    }
    mkdirSync(dirname(p.agentFile), { recursive: true });
    copyFileSync(template, p.agentFile);
    did(`${agentRel} from ${rel(template)}`);
  } else kept(agentRel);

  if (!existsSync(p.program)) {
    const part = (name: string) => {
      const own = join(p.programTemplates, name);
      const builtIn = join(HARNESS_ROOT, "program_templates", name);
      return existsSync(own) ? readFileSync(own, "utf8") : existsSync(builtIn) ? readFileSync(builtIn, "utf8") : "";
    };
    writeFileSync(p.program, [part("base.md"), part(`${benchmark}.md`)].filter(Boolean).join("\n\n"));
    did("PROGRAM.md");
  } else kept("PROGRAM.md");

  const toCommit = [agentRel, "PROGRAM.md", ".gitignore", rel(p.config)];
  if (existsSync(p.agentTemplates)) toCommit.push(rel(p.agentTemplates));
  const commit = await repo.commitPaths(toCommit, "prepare: agent, PROGRAM.md and config");
  if (commit) did(`commit ${commit.slice(0, 7)} (${toCommit.join(", ")})`);
  else kept("commit of agent, PROGRAM.md and config");

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
    // The sealed holdout first: kept out of every gate, scored once at the end of a run.
    const fraction = holdoutFraction(config.holdout_fraction, all.length);
    const sealed = fraction > 0 ? stratifiedSplit(baseline.results, config.seed + 1, 1 - fraction) : null;
    const holdout = sealed?.test ?? [];
    const rest = sealed
      ? Object.fromEntries(Object.entries(baseline.results).filter(([id]) => !holdout.includes(id)))
      : baseline.results;
    const split = stratifiedSplit(rest, config.seed);
    pinSplit(opened.journal, p.split, {
      seed: config.seed,
      created_at: new Date(clock.now()).toISOString(),
      train: split.train,
      test: split.test,
      excluded: split.excluded,
      holdout,
      counts: split.counts,
    });
    did(
      `${rel(p.split)}: ${split.train.length} train, ${split.test.length} test` +
        (holdout.length
          ? `, ${holdout.length} sealed holdout (scored once, at the end of a run)`
          : `, no sealed holdout (${all.length} tasks; holdout_fraction applies from 60)`) +
        (split.excluded.length
          ? `, ${split.excluded.length} excluded (infrastructure errors: ${split.excluded.join(", ")})`
          : ""),
    );
    const trainResults = Object.fromEntries(split.train.map((id) => [id, baseline.results[id] ?? null]));
    if (!readTrainResults(p.trainResults)) writeTrainResults(p.trainResults, trainResults, new Date(clock.now()));
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
    return 0;
  } finally {
    opened.journal.close();
  }
}
