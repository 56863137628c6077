/**
 * `init`: scaffolds a working experiment in an empty directory — a few sample tasks, a scorer, an
 * agent (TypeScript or Python), the config and a README — that `prepare` takes as is. The samples
 * are a starting point: replace the tasks, the scorer and the agent with your own.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.ts";
import { openRepo } from "../git/repo.ts";
import { checkWritable, nearestExisting } from "./input-checks.ts";

const TEMPLATES = join(dirname(fileURLToPath(import.meta.url)), "init-templates");

export type InitBenchmark = "local" | "command";
export type InitLanguage = "ts" | "python";
export type InitProvider = "anthropic" | "openai";

export interface InitOptions {
  dir: string;
  benchmark: InitBenchmark;
  language: InitLanguage;
  provider?: InitProvider;
  stdout?: NodeJS.WritableStream;
}

/** The config's lines on the agent's model: the Messages API through ctx.client, or OpenAI's through the gateway. */
function modelLines(provider: InitProvider): string[] {
  if (provider === "anthropic") return ["agent_model: claude-sonnet-4-6"];
  return [
    "# The agent's provider: the built-in `openai` (its key in OPENAI_API_KEY, never in the agent's reach). Any",
    "# OpenAI-compatible endpoint (vLLM, Ollama, a LiteLLM proxy) is a provider of your own, e.g.",
    "#   providers: { local: { format: openai, base_url: http://127.0.0.1:8000/v1 } }  and  agent_model: local/<model>",
    "agent_model: openai/gpt-5-mini",
  ];
}

/** Pure: the files of the scaffold, as (path in the experiment → template file or text). */
export function scaffold(
  benchmark: InitBenchmark,
  language: InitLanguage,
  provider: InitProvider = "anthropic",
): Record<string, { from: string } | { text: string }> {
  const agentFile = language === "python" ? "agent/agent.py" : "agent/agent.ts";
  const flavour = provider === "openai" ? ".openai" : "";
  const files: Record<string, { from: string } | { text: string }> = {
    [agentFile]: { from: language === "python" ? `agent${flavour}.py` : `agent${flavour}.ts` },
    ".gitignore": { text: "workspace/\n__pycache__/\nnode_modules/\n" },
  };
  // The TypeScript agent's own package, from the experiment's node_modules.
  if (provider === "openai" && language === "ts") {
    files["package.json"] = {
      text: `${JSON.stringify({ private: true, dependencies: { openai: "^6.0.0" } }, null, 2)}\n`,
    };
  }
  const config = [
    `# Created by \`auto-harness init --benchmark ${benchmark} --language ${language} --provider ${provider}\`; every key: the harness's README, "Configuration".`,
    `benchmark: ${benchmark}`,
    `agent_file: ${agentFile}`,
    ...modelLines(provider),
    "coding_model: claude-opus-4-6",
    "max_concurrency: 4",
    "max_iterations: 10",
    "budget_usd: 10",
  ];
  let layout: string;
  if (benchmark === "local") {
    files["tasks.jsonl"] = { from: "tasks.jsonl" };
    files["scorer.ts"] = { from: "scorer.ts" };
    config.push("local: { tasks: tasks.jsonl, scorer: scorer.ts }");
    layout = [
      "- `tasks.jsonl`: the tasks, one JSON object per line with an `id`; the agent sees `{ id, input }`, the scorer the whole line.",
      "- `scorer.ts`: scores an answer, 0..1 (its default export is `(task, result) => number | { reward, detail }`).",
    ].join("\n");
  } else {
    files["bench/tasks.jsonl"] = { from: "tasks.jsonl" };
    files["bench/run_bench.py"] = { from: "run_bench.py" };
    if (language === "ts") files["bench/run_agent.mjs"] = { from: "run_agent.mjs" };
    config.push('command: { run: "python3 bench/run_bench.py", timeout: 3600 }');
    layout = [
      "- `bench/run_bench.py`: the benchmark program the harness runs (the `command` adapter): it runs the agent on",
      "  `bench/tasks.jsonl`, scores each answer and writes the rewards where `HARNESS_RESULTS_FILE` says. A command",
      "  benchmark runs the agent itself, outside the harness's sandbox.",
    ].join("\n");
  }
  const readme = [
    "# An auto-harness experiment",
    "",
    `The agent under optimization is \`${agentFile}\` (${language === "python" ? "Python, standard library only" : "TypeScript"}); the`,
    "coding agent may change nothing else. The sample benchmark asks for capital cities:",
    "",
    layout,
    provider === "openai"
      ? `- \`${agentFile}\`: the agent, \`run(task, ctx)\`; it calls the model in OpenAI's format at \`OPENAI_BASE_URL\` (the harness's gateway), \`ctx.model\` is \`agent_model\`.`
      : `- \`${agentFile}\`: the agent, \`run(task, ctx)\`; \`ctx.client\` calls the model, \`ctx.model\` is \`agent_model\`.`,
    "- `experiment_config.yaml`: the settings (models, concurrency, limits).",
    "",
    provider === "openai"
      ? `Replace the tasks, the scoring and the agent with your own, then, ${language === "ts" ? "after `npm install` (the agent's `openai` package), " : ""}with \`OPENAI_API_KEY\` (the agent's provider) and \`ANTHROPIC_API_KEY\` (the coding agent's) set (\`npx\``
      : "Replace the tasks, the scoring and the agent with your own, then, with `ANTHROPIC_API_KEY` set (`npx`",
    "finds the harness from its repository; elsewhere run `node <harness>/bin/auto-harness.js`, or `npm link` it once):",
    "",
    "```sh",
    "npx auto-harness prepare   # checks the agent, tasks and scorer; baseline, train/test split, iteration 0",
    "npx auto-harness run       # the improvement loop; `npx auto-harness status` shows where it stands",
    "npx auto-harness view      # in the morning: every run, round, candidate and train transcript",
    "```",
    "",
  ].join("\n");
  files["experiment_config.yaml"] = { text: `${config.join("\n")}\n` };
  files["README.md"] = { text: readme };
  return files;
}

export async function initCommand(options: InitOptions): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const root = resolve(options.dir);
  if (!["local", "command"].includes(options.benchmark)) {
    throw new UserError("USAGE", `--benchmark must be local or command, got "${options.benchmark}"`);
  }
  if (!["ts", "python"].includes(options.language)) {
    throw new UserError("USAGE", `--language must be ts or python, got "${options.language}"`);
  }
  const provider = options.provider ?? "anthropic";
  if (!["anthropic", "openai"].includes(provider)) {
    throw new UserError("USAGE", `--provider must be anthropic or openai, got "${provider}"`);
  }
  const files = scaffold(options.benchmark, options.language, provider);
  // Read first: never write over an existing experiment or the operator's files.
  if (existsSync(join(root, "experiment_config.yaml"))) {
    throw new UserError("RUN_STATE", `${root} already has an experiment_config.yaml; init works in a new directory`);
  }
  const clash = Object.keys(files).filter((f) => existsSync(join(root, f)));
  if (clash.length > 0) throw new UserError("RUN_STATE", `${root} already has ${clash.join(", ")}; nothing written`);
  // A new path is made here; the nearest existing folder must take it (simple-git needs the folder first).
  checkWritable([nearestExisting(root)], "init");
  mkdirSync(root, { recursive: true });
  const repo = openRepo(root);
  const fresh = readdirSync(root).length === 0;
  for (const [rel, source] of Object.entries(files)) {
    const target = join(root, rel);
    mkdirSync(dirname(target), { recursive: true });
    if ("from" in source) copyFileSync(join(TEMPLATES, source.from), target);
    else writeFileSync(target, source.text);
    if (rel.endsWith(".py") && rel.startsWith("bench/")) chmodSync(target, 0o755);
    out.write(`  created  ${rel}\n`);
  }
  if (!(await repo.isRepo())) await repo.init();
  const commit = await repo.commitPaths(Object.keys(files), "init: experiment scaffold");
  if (commit) out.write(`  commit   ${commit.slice(0, 7)} init: experiment scaffold\n`);
  out.write(
    `\n${fresh ? "A new" : "An"} ${options.benchmark} experiment with a ${options.language === "python" ? "Python" : "TypeScript"} agent in ${root}.\n` +
      (provider === "openai"
        ? `Next: ${options.language === "ts" ? "`npm install` there, " : ""}export OPENAI_API_KEY=… and ANTHROPIC_API_KEY=… (the coding agent's), then \`npx auto-harness prepare\` and \`npx auto-harness run\` there (see its README.md).\n`
        : "Next: export ANTHROPIC_API_KEY=…, then `npx auto-harness prepare` and `npx auto-harness run` there (see its README.md).\n"),
  );
  return 0;
}
