/**
 * `adopt <dir>`: takes over an experiment of the Python original in place, as a prepared experiment,
 * without re-running the baseline. Its history stays as it is: results.tsv (rows numbered as record.py
 * numbers them), suite.json, train_results.json (either of its shapes), learnings.md, PROGRAM.md, the
 * agent's git history. What changes: experiment_config.yaml becomes ours (the original's is kept as
 * experiment_config.original.yaml), and the task split the original kept in `*_data/task_split.json`
 * (or tau2's own split) is written as workspace/split.json.
 */
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { agentHashOf } from "../benchmark/agent-hash.ts";
import { parseYaml, validateConfig, yamlText } from "../config/load.ts";
import { UserError } from "../errors.ts";
import { bestSoFar, pinSplit } from "../gate/records.ts";
import { openRepo } from "../git/repo.ts";
import { Journal } from "../journal/journal.ts";
import { passes } from "../scoring.ts";
import {
  readResults,
  readSplit,
  readSuite,
  readTrainResults,
  type SplitFile,
  writeFileAtomic,
} from "../workspace/files.ts";
import { paths } from "../workspace/paths.ts";

const HARNESS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ORIGINAL_CONFIG = "experiment_config.original.yaml";
const ORIGINAL_AGENT = "agent/agent.py";

const originalConfigSchema = z.looseObject({
  benchmark: z.string().default("tau-bench"),
  agent_model: z.string().optional(),
  user_model: z.string().optional(),
  domain: z.string().optional(),
  dataset: z.string().optional(),
  env_provider: z.string().optional(),
  max_concurrency: z.number().int().positive().optional(),
  per_task_timeout: z.number().positive().optional(),
});
type OriginalConfig = z.infer<typeof originalConfigSchema>;

const taskSplitSchema = z.looseObject({
  train: z.array(z.coerce.string()),
  test: z.array(z.coerce.string()),
  metadata: z.looseObject({ created: z.string().optional(), seed: z.number().optional() }).optional(),
});

export const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);

/** Pure: the original's config → ours (a `command` benchmark through the matching wrapper). */
export function adoptedConfig(original: OriginalConfig, threshold: number, harnessRoot = HARNESS_ROOT): object {
  const wrapper = (name: string) => join(harnessRoot, "benchmarks", name, "run.py");
  let run: string;
  let timeout: number;
  switch (original.benchmark) {
    case "terminal-bench":
      run = [
        "python3",
        wrapper("harbor"),
        "--dataset",
        original.dataset ?? "terminal-bench@2.0",
        "--env",
        original.env_provider ?? "e2b",
      ]
        .map(shellQuote)
        .join(" ");
      timeout = 4 * 3600;
      break;
    case "tau-bench":
      if (!original.domain) {
        throw new UserError("CONFIG_INVALID", "the original's experiment_config.yaml names no tau-bench `domain`");
      }
      run = ["python3", wrapper("tau2"), "--domain", original.domain]
        .concat(original.user_model ? ["--user-model", original.user_model] : [])
        .map(shellQuote)
        .join(" ");
      timeout = 2 * 3600;
      break;
    default:
      throw new UserError(
        "CONFIG_INVALID",
        `benchmark \`${original.benchmark}\` has no wrapper here (terminal-bench and tau-bench do); write a command for it (README "Your own benchmark") and adopt again`,
      );
  }
  return {
    benchmark: "command",
    agent_file: ORIGINAL_AGENT,
    ...(original.agent_model ? { agent_model: original.agent_model } : {}),
    ...(original.max_concurrency ? { max_concurrency: original.max_concurrency } : {}),
    ...(original.per_task_timeout ? { per_task_timeout: original.per_task_timeout } : {}),
    threshold,
    command: { run, timeout },
  };
}

/** The original's task split: `*_data/task_split.json`, or for tau-bench tau2's own split file. */
function findTaskSplit(root: string, original: OriginalConfig): { file: string; train: string[]; test: string[] } {
  const candidates = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name.endsWith("_data"))
    .map((d) => join(root, d.name, "task_split.json"))
    .filter((f) => existsSync(f));
  if (original.benchmark === "tau-bench" && original.domain) {
    const dataDir = process.env.TAU2_DATA_DIR ?? join(root, "tau2_data");
    const tau2 = join(dataDir, "tau2", "domains", original.domain, "split_tasks.json");
    if (existsSync(tau2)) candidates.push(tau2);
  }
  if (candidates.length === 0) {
    throw new UserError(
      "RUN_STATE",
      `no task split found in ${root} (looked for *_data/task_split.json and, for tau-bench, tau2_data/tau2/domains/<domain>/split_tasks.json)`,
    );
  }
  if (candidates.length > 1) {
    throw new UserError(
      "RUN_STATE",
      `more than one task split: ${candidates.map((c) => relative(root, c)).join(", ")}; remove the stale one`,
    );
  }
  const file = candidates[0] as string;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new UserError("RUN_STATE", `${file}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = taskSplitSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UserError(
      "RUN_STATE",
      `${file}: expected {"train": [...], "test": [...]} (${parsed.error.issues[0]?.message})`,
    );
  }
  return { file, train: parsed.data.train, test: parsed.data.test };
}

export interface AdoptOptions {
  dir: string;
  stdout?: NodeJS.WritableStream;
  now?: () => Date;
  harnessRoot?: string;
}

export async function adoptCommand(options: AdoptOptions): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const now = options.now ?? (() => new Date());
  const root = resolve(options.dir);
  const p = paths(root);
  const say = (line: string) => out.write(`  ${line}\n`);

  // Read everything first: a missing or damaged file stops adopt before anything is written.
  if (!existsSync(p.config)) throw new UserError("RUN_STATE", `${p.config}: not found; is ${root} an experiment?`);
  const configText = readFileSync(p.config, "utf8");
  const current = validateConfig(parseYaml(configText));
  if (current.config) {
    if (existsSync(p.split) && existsSync(p.results)) {
      say(`kept     ${root} (already an auto-harness experiment)`);
      return 0;
    }
    throw new UserError("RUN_STATE", `${root} has our config but is not prepared; run \`auto-harness prepare\``);
  }
  const originalParsed = originalConfigSchema.safeParse(parseYaml(configText) ?? {});
  if (!originalParsed.success) {
    throw new UserError(
      "CONFIG_INVALID",
      `${p.config}: not the original's config (${originalParsed.error.issues[0]?.message})`,
    );
  }
  const original = originalParsed.data;
  if (!existsSync(join(root, ORIGINAL_AGENT)))
    throw new UserError("RUN_STATE", `${join(root, ORIGINAL_AGENT)}: not found`);
  if (!existsSync(p.results))
    throw new UserError("RUN_STATE", `${p.results}: not found; the original never ran prepare.py here`);
  const rows = readResults(p.results);
  if (rows[0]?.iteration !== 0 || rows[0]?.commit !== "baseline") {
    throw new UserError(
      "RUN_STATE",
      `${p.results}: no baseline row (iteration 0, commit baseline); run the original's prepare.py first`,
    );
  }
  const suite = readSuite(p.suite);
  const trainResults = readTrainResults(p.trainResults);
  if (!existsSync(p.learnings)) throw new UserError("RUN_STATE", `${p.learnings}: not found`);
  if (!existsSync(p.program)) throw new UserError("RUN_STATE", `${p.program}: not found`);
  const taskSplit = findTaskSplit(root, original);
  if (readSplit(p.split)) throw new UserError("RUN_STATE", `${p.split} exists already; remove it to adopt again`);
  const config = adoptedConfig(original, suite.threshold, options.harnessRoot);
  const check = validateConfig(config);
  if (!check.config) throw new UserError("CONFIG_INVALID", `adopted config: ${check.errors.join("; ")}`);

  // Compute: train tasks that passed in the last train run count as passing; the test split's
  // per-task baseline the original never kept.
  const lastTrain = trainResults?.results ?? {};
  const split: SplitFile & { source: string } = {
    seed: 42,
    created_at: now().toISOString(),
    train: [...taskSplit.train].sort(),
    test: [...taskSplit.test].sort(),
    holdout: [],
    excluded: [],
    counts: {
      train: taskSplit.train.length,
      test: taskSplit.test.length,
      train_passing: taskSplit.train.filter((t) => passes(lastTrain[t])).length,
      test_passing: 0,
      excluded: 0,
    },
    source: relative(root, taskSplit.file),
  };

  // Write.
  renameSync(p.config, join(root, ORIGINAL_CONFIG));
  writeFileAtomic(
    p.config,
    `# Adopted from the Python original (its config: ${ORIGINAL_CONFIG}).\n${yamlText(config)}`,
  );
  say(
    `wrote    experiment_config.yaml (benchmark command, agent_file ${ORIGINAL_AGENT}); the original's kept as ${ORIGINAL_CONFIG}`,
  );
  // The journal holds the records the gate trusts: the split, the suite and the best score so far (the
  // incumbent is the last accepted agent, which scored the best row, as the original's gate compares).
  const journal = Journal.open(p.journal);
  let best: number | null;
  try {
    pinSplit(journal, p.split, split);
    // The suite as the original wrote it, byte for byte: the file stays its view.
    if (existsSync(p.suite)) journal.pins.pin("suite", readFileSync(p.suite, "utf8"));
    journal.pins.pin(
      "baseline",
      JSON.stringify({
        valScore: Math.max(...rows.map((r) => r.valScore)),
        agentHash: agentHashOf(readFileSync(join(root, ORIGINAL_AGENT))),
      }),
    );
    journal.pins.putFact("adopted_from_original", now().toISOString());
    best = bestSoFar(journal);
  } finally {
    journal.close();
  }
  say(
    `wrote    ${relative(root, p.split)} from ${split.source}: ${split.train.length} train, ${split.test.length} test`,
  );
  const gitignore = join(root, ".gitignore");
  const ignored = existsSync(gitignore) ? readFileSync(gitignore, "utf8") : "";
  if (!/^\/?workspace\/?$/m.test(ignored)) {
    writeFileSync(gitignore, `${ignored}${ignored === "" || ignored.endsWith("\n") ? "" : "\n"}workspace/\n`);
  }
  const repo = openRepo(root);
  if (!(await repo.isRepo())) await repo.init();
  const commit = await repo.commitPaths(
    ["experiment_config.yaml", ORIGINAL_CONFIG, ".gitignore", ORIGINAL_AGENT, "PROGRAM.md"],
    "adopt: experiment of the Python original",
  );
  if (commit) say(`commit   ${commit.slice(0, 7)} adopt: experiment of the Python original`);
  say(
    `kept     results.tsv (${rows.length} rows, best val_score ${best?.toFixed(4) ?? "n/a"}), suite.json (${suite.tasks.length} tasks), ` +
      `train_results.json, learnings.md, PROGRAM.md, ${ORIGINAL_AGENT} and its history`,
  );
  say("next     auto-harness run: the loop continues from here (no new baseline)");
  return 0;
}
