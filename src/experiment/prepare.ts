import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, extname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stratifiedSplit } from "../benchmark/split.ts";
import type { Config } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { pinSplit } from "../gate/records.ts";
import type { Repo } from "../git/repo.ts";
import type { Stores } from "../journal/stores.ts";
import { LEARNINGS_HEADER } from "../learnings/learnings.ts";
import {
  initResults,
  readResults,
  readSuite,
  readTrainResults,
  writeSuite,
  writeTrainResults,
} from "../workspace/files.ts";
import type { Paths } from "../workspace/paths.ts";
import type { MeasuredBaseline } from "./baseline.ts";

/**
 * Preparing an experiment, idempotently: the git repository, the workspace files, the agent from its template,
 * PROGRAM.md composed from the templates, their commit, and the split pinned from the baseline. Each part that
 * already exists is kept, and reported as kept.
 */

/** The harness's own templates, used when the experiment directory has none of its own. */
const HARNESS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** holdout_fraction null: 0.2 with at least 60 tasks, else none (too few to seal any away). */
export function holdoutFraction(configured: number | null | undefined, tasks: number): number {
  if (configured !== null && configured !== undefined) return configured;
  return tasks >= 60 ? 0.2 : 0;
}

/** Below this many test tasks the gate's val_score moves too far per task to tell a fix from luck. */
export const SMALL_TEST_SPLIT = 10;

/** The warning prepare prints for a test split too small to decide on, or null. */
export function smallSplitWarning(testTasks: number): string | null {
  if (testTasks >= SMALL_TEST_SPLIT) return null;
  const step = testTasks > 0 ? (1 / testTasks).toFixed(2) : "everything";
  return (
    `the test split has only ${testTasks} task(s): each one moves val_score by ${step}, so the gate can hardly tell an ` +
    `improvement from luck; add tasks (${SMALL_TEST_SPLIT * 3} or more in the test split is a useful start)`
  );
}

/** One part of the experiment, as prepare found or made it. */
export interface PrepareEvent {
  created: boolean;
  what: string;
}

interface Experiment {
  root: string;
  config: Config;
  paths: Paths;
}

function agentTemplates(exp: Experiment): { template: string; builtIn: string } {
  // A Python agent file starts from the benchmark's Python template, a TypeScript one from its .ts.
  const ext = extname(exp.paths.agentRel);
  return {
    template: join(exp.paths.agentTemplates, `${exp.config.benchmark}${ext}`),
    builtIn: join(HARNESS_ROOT, "agent", "templates", `${exp.config.benchmark}${ext}`),
  };
}

const noAgent = (exp: Experiment, template: string): UserError =>
  new UserError(
    "RUN_STATE",
    `no agent: benchmark \`${exp.config.benchmark}\` has no template (${relative(exp.root, template)}); write ${exp.paths.agentRel} yourself`,
  );

/** Refuses, before anything is written, when there is no agent and no template to start one from. */
export function checkAgentSource(exp: Experiment): void {
  const { template, builtIn } = agentTemplates(exp);
  if (!existsSync(exp.paths.agentFile) && !existsSync(template) && !existsSync(builtIn)) throw noAgent(exp, template);
}

/** The file the agent is, or will be copied from: the agent file, else its template; null when neither exists. */
export function agentSourceFile(exp: Experiment): string | null {
  const { template, builtIn } = agentTemplates(exp);
  return [exp.paths.agentFile, template, builtIn].find((f) => existsSync(f)) ?? null;
}

/** Everything but the baseline: each part is reported as it is created or kept. */
export async function scaffoldExperiment(
  exp: Experiment & { repo: Repo },
  report: (event: PrepareEvent) => void,
): Promise<void> {
  const { root, config, paths: p, repo } = exp;
  const rel = (file: string) => relative(root, file);
  const did = (what: string) => report({ created: true, what });
  const kept = (what: string) => report({ created: false, what });
  const agentRel = p.agentRel;
  const { template, builtIn: builtInTemplate } = agentTemplates(exp);

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
    if (!existsSync(template)) throw noAgent(exp, template);
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
    writeFileSync(p.program, [part("base.md"), part(`${config.benchmark}.md`)].filter(Boolean).join("\n\n"));
    did("PROGRAM.md");
  } else kept("PROGRAM.md");

  const toCommit = [agentRel, "PROGRAM.md", ".gitignore", rel(p.config)];
  if (existsSync(p.agentTemplates)) toCommit.push(rel(p.agentTemplates));
  const commit = await repo.commitPaths(toCommit, "prepare: agent, PROGRAM.md and config");
  if (commit) did(`commit ${commit.slice(0, 7)} (${toCommit.join(", ")})`);
  else kept("commit of agent, PROGRAM.md and config");
}

/**
 * Splits the tasks by the baseline's results, the sealed holdout first (kept out of every gate, scored once at
 * the end of a run), pins the split and writes the train results.
 */
export function pinBaselineSplit(
  exp: Experiment & { journal: Pick<Stores, "pins"> },
  baseline: MeasuredBaseline,
  tasks: number,
  now: Date,
): { split: ReturnType<typeof stratifiedSplit>; holdout: string[] } {
  const { config, paths: p } = exp;
  const fraction = holdoutFraction(config.holdout_fraction, tasks);
  const sealed = fraction > 0 ? stratifiedSplit(baseline.results, config.seed + 1, 1 - fraction) : null;
  const holdout = sealed?.test ?? [];
  const rest = sealed
    ? Object.fromEntries(Object.entries(baseline.results).filter(([id]) => !holdout.includes(id)))
    : baseline.results;
  const split = stratifiedSplit(rest, config.seed);
  pinSplit(exp.journal, p.split, {
    seed: config.seed,
    created_at: now.toISOString(),
    train: split.train,
    test: split.test,
    excluded: split.excluded,
    holdout,
    counts: split.counts,
  });
  const trainResults = Object.fromEntries(split.train.map((id) => [id, baseline.results[id] ?? null]));
  if (!readTrainResults(p.trainResults)) writeTrainResults(p.trainResults, trainResults, now);
  return { split, holdout };
}
