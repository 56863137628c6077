/**
 * `init`: scaffolds a working experiment in an empty directory — a few sample tasks, a scorer, an
 * agent (TypeScript or Python), the config and a README — that `prepare` takes as is. The samples
 * are a starting point: replace the tasks, the scorer and the agent with your own. `harbor` and `tau2`
 * scaffold a starter for those tools instead: the Python agent class the tool imports, run through the
 * harness's own wrapper, with the task list made.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.ts";
import { openRepo } from "../git/repo.ts";
import { shellQuote } from "./adopt.ts";
import { checkWritable, nearestExisting } from "./input-checks.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const TEMPLATES = join(HERE, "init-templates");
const HARNESS_ROOT = resolve(HERE, "..", "..");

export const INIT_BENCHMARKS = ["local", "command", "harbor", "tau2"] as const;
export type InitBenchmark = (typeof INIT_BENCHMARKS)[number];
export type InitLanguage = "ts" | "python";
export type InitProvider = "anthropic" | "openai";

export interface InitOptions {
  dir: string;
  benchmark: InitBenchmark;
  /** Default: ts, or python for harbor and tau2 (the only language their agents have). */
  language?: InitLanguage;
  provider?: InitProvider;
  stdout?: NodeJS.WritableStream;
}

/** A scaffold file: a template (changed on the way by `edit`), or text. */
export type ScaffoldFile = { from: string; edit?: (text: string) => string } | { text: string };

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

/** The README's last lines: how to start, wherever the harness is. */
const NEXT_COMMANDS = [
  "finds the harness from its repository; elsewhere run `node <harness>/bin/auto-harness.js`, or `npm link` it once):",
  "",
  "```sh",
  "npx auto-harness prepare   # checks the agent, tasks and scorer; baseline, train/test split, iteration 0",
  "npx auto-harness run       # the improvement loop; `npx auto-harness status` shows where it stands",
  "npx auto-harness view      # in the morning: every run, round, candidate and train transcript",
  "```",
  "",
];

/** The scaffold's files with its config and its README, which ends in how to start. */
function withConfigAndReadme(
  files: Record<string, ScaffoldFile>,
  config: string[],
  readme: string[],
): Record<string, ScaffoldFile> {
  files["experiment_config.yaml"] = { text: `${config.join("\n")}\n` };
  files["README.md"] = { text: [...readme, ...NEXT_COMMANDS].join("\n") };
  return files;
}

/** Harbor and tau2: what differs between their starters. */
const RECIPES = {
  harbor: {
    title: "Terminal-Bench 2.0 through Harbor",
    tool: "Harbor",
    install: "uv tool install harbor",
    args: "--dataset terminal-bench@2.0 --env docker --tasks-file tbench_tasks.txt",
    config: [
      "max_concurrency: 4   # trials at once (harbor run --n-concurrent), each in its own Docker container",
      "max_iterations: 10",
      "budget_usd: 50       # every model call of the night: the agent's, in every trial",
    ],
    timeout: 4 * 3600,
    agent:
      "`HarnessAgent`, the Harbor agent (`BaseAgent`) Harbor imports: it works in each task's container through one `bash` tool",
    layout: [
      "- `tbench_tasks.txt`: the tasks, one Harbor task name per line: a starter set of 20 Terminal-Bench 2.0 tasks",
      "  (its header says how to get the full list). The harness splits them into train and test at `prepare`.",
    ],
    installNote: "Install Harbor once (it runs each task in a Docker container, so Docker must be running):",
  },
  tau2: {
    title: "tau2-bench",
    tool: "tau2-bench",
    install: "git clone https://github.com/sierra-research/tau2-bench && python3 -m pip install -e tau2-bench",
    args: "--domain retail --task-split-name base",
    config: [
      "max_concurrency: 3   # conversations at once (tau2's max_concurrency)",
      "max_iterations: 10",
      "budget_usd: 25       # every model call of the night: the agent's and the user simulator's",
      "# The user simulator talks through agent_model too; for another model add it to agent_models and pass",
      "# --user-model <it> in command.run.",
    ],
    timeout: 2 * 3600,
    agent:
      "`HarnessAgent`, a tau2 agent (`LLMAgent`) the harness's wrapper registers with tau2: it answers the user simulator or calls the domain's tools",
    layout: [
      "- The tasks: tau2's `retail` domain, its `base` task split (`--domain` and `--task-split-name` in command.run;",
      "  `airline`, `telecom` and `mock` are the other domains). The harness splits them into train and test at `prepare`.",
    ],
    installNote:
      "Install tau2-bench once, into the Python that `python3` runs (the clone brings tau2's data; with a virtualenv, name its Python in command.run instead of `python3`):",
  },
} as const;

/** Pure: a Harbor or tau2 starter — the tool's agent class, the harness's wrapper as the command, the tasks named. */
function recipeScaffold(benchmark: keyof typeof RECIPES, provider: InitProvider): Record<string, ScaffoldFile> {
  const recipe = RECIPES[benchmark];
  const files: Record<string, ScaffoldFile> = {
    "agent/agent.py": {
      from: `agent.${benchmark}.py`,
      ...(provider === "openai"
        ? { edit: (t: string) => t.replace('API_FORMAT = "anthropic"', 'API_FORMAT = "openai"') }
        : {}),
    },
    ".gitignore": { text: "workspace/\n__pycache__/\n" },
  };
  if (benchmark === "harbor") files["tbench_tasks.txt"] = { from: "tbench_tasks.txt" };
  const wrapper = join(HARNESS_ROOT, "benchmarks", benchmark, "run.py");
  const config = [
    `# Created by \`auto-harness init --benchmark ${benchmark} --provider ${provider}\`; every key: the harness's README, "Configuration".`,
    `# ${recipe.title}: the harness's own wrapper runs the tool on the tasks it is given and reads their rewards.`,
    "benchmark: command",
    "agent_file: agent/agent.py",
    ...modelLines(provider),
    "coding_model: claude-opus-4-6",
    ...recipe.config,
    "command:",
    `  run: ${JSON.stringify(`python3 ${shellQuote(wrapper)} ${recipe.args}`)}`,
    `  timeout: ${recipe.timeout}   # seconds for one call: a whole train or test pass over its tasks`,
  ];
  const [format, baseUrl] =
    provider === "openai" ? ["OpenAI's", "OPENAI_BASE_URL"] : ["Anthropic's", "ANTHROPIC_BASE_URL"];
  const readme = [
    `# An auto-harness experiment: ${recipe.title}`,
    "",
    "The agent under optimization is `agent/agent.py`; the coding agent may change nothing else.",
    "",
    `- \`agent/agent.py\`: ${recipe.agent}. It calls its model (\`agent_model\`) in ${format} format through`,
    `  the harness's gateway, by LiteLLM at \`${baseUrl}\`: the gateway holds the key and meters every call.`,
    ...recipe.layout,
    `- \`experiment_config.yaml\`: the settings; \`command.run\` is the harness's ${benchmark} wrapper (\`${wrapper}\`).`,
    "",
    recipe.installNote,
    "",
    "```sh",
    recipe.install,
    "```",
    "",
    provider === "openai"
      ? "Then, with `OPENAI_API_KEY` (the agent's provider) and `ANTHROPIC_API_KEY` (the coding agent's) set (`npx`"
      : "Then, with `ANTHROPIC_API_KEY` set (`npx`",
  ];
  return withConfigAndReadme(files, config, readme);
}

/** Pure: the files of the scaffold, as (path in the experiment → template file or text). */
export function scaffold(
  benchmark: InitBenchmark,
  language: InitLanguage,
  provider: InitProvider = "anthropic",
): Record<string, ScaffoldFile> {
  if (benchmark === "harbor" || benchmark === "tau2") return recipeScaffold(benchmark, provider);
  const agentFile = language === "python" ? "agent/agent.py" : "agent/agent.ts";
  const flavour = provider === "openai" ? ".openai" : "";
  const files: Record<string, ScaffoldFile> = {
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
    "candidates: 4   # edits per round, raced on held-out: 1.7-1.9x the true gain of one in simulation (docs/gate.md)",
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
  ];
  return withConfigAndReadme(files, config, readme);
}

/** The one-line refusals of `init`'s options, before anything is read or written. */
function checkOptions(options: InitOptions): { language: InitLanguage; provider: InitProvider } {
  if (!(INIT_BENCHMARKS as readonly string[]).includes(options.benchmark)) {
    throw new UserError("USAGE", `--benchmark must be ${INIT_BENCHMARKS.join(", ")}, got "${options.benchmark}"`);
  }
  const recipe = options.benchmark === "harbor" || options.benchmark === "tau2";
  const language = options.language ?? (recipe ? "python" : "ts");
  if (!["ts", "python"].includes(language)) {
    throw new UserError("USAGE", `--language must be ts or python, got "${language}"`);
  }
  if (recipe && language !== "python") {
    throw new UserError(
      "USAGE",
      `--language must be python for --benchmark ${options.benchmark} (the tool imports a Python agent class); drop --language or pass --language python`,
    );
  }
  const provider = options.provider ?? "anthropic";
  if (!["anthropic", "openai"].includes(provider)) {
    throw new UserError("USAGE", `--provider must be anthropic or openai, got "${provider}"`);
  }
  return { language, provider };
}

/** What to do next, in the words of the scaffold just made. */
function nextLine(benchmark: InitBenchmark, language: InitLanguage, provider: InitProvider): string {
  const install =
    benchmark === "harbor" || benchmark === "tau2"
      ? `install ${RECIPES[benchmark].tool} (\`${RECIPES[benchmark].install}\`), `
      : provider === "openai" && language === "ts"
        ? "`npm install` there, "
        : "";
  const keys =
    provider === "openai"
      ? "export OPENAI_API_KEY=… and ANTHROPIC_API_KEY=… (the coding agent's)"
      : "export ANTHROPIC_API_KEY=…";
  return `Next: ${install}${keys}, then \`npx auto-harness prepare\` and \`npx auto-harness run\` there (see its README.md).\n`;
}

export async function initCommand(options: InitOptions): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const root = resolve(options.dir);
  const { language, provider } = checkOptions(options);
  const files = scaffold(options.benchmark, language, provider);
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
    if ("text" in source) writeFileSync(target, source.text);
    else if (source.edit) writeFileSync(target, source.edit(readFileSync(join(TEMPLATES, source.from), "utf8")));
    else copyFileSync(join(TEMPLATES, source.from), target);
    if (rel.endsWith(".py") && rel.startsWith("bench/")) chmodSync(target, 0o755);
    out.write(`  created  ${rel}\n`);
  }
  if (!(await repo.isRepo())) await repo.init();
  const commit = await repo.commitPaths(Object.keys(files), "init: experiment scaffold");
  if (commit) out.write(`  commit   ${commit.slice(0, 7)} init: experiment scaffold\n`);
  out.write(
    `\n${fresh ? "A new" : /^[aeiou]/.test(options.benchmark) ? "An" : "A"} ${options.benchmark} experiment with a ${language === "python" ? "Python" : "TypeScript"} agent in ${root}.\n` +
      nextLine(options.benchmark, language, provider),
  );
  return 0;
}
