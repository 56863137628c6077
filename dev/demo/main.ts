/**
 * The offline demo (`npm run demo`): prepare and a short run of the example benchmark in a fresh scratch
 * directory, against the local test LLM server playing both models, with no API key. The real CLI runs in
 * child processes; this process serves the simulated models and condenses the daemon's JSON log lines.
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { findBwrap } from "../../src/benchmark/sealed/sandbox.ts";
import { type ScriptStep, startTestLlmServer } from "../llm-server/llm-server.ts";
import { asMessagesRequest, SIMULATED_PREFIX, simulatedAgentModel } from "./simulated-agent-model.ts";
import { isCodingAgentRequest, simulatedCodingModel } from "./simulated-coding-model.ts";

/** A fifth of the tasks sealed away: the night ends with the holdout's verdict, as a real one does. */
const DEMO_HOLDOUT = 0.2;

export const UNSEALED_BANNER = [
  "",
  "UNSEALED: bubblewrap (bwrap) is not installed here, so this demo runs the agent under test without the",
  "sandbox (sandbox: none): it could reach the network and read the experiment. Everything else is the same.",
  "For the sealed run: on Debian or Ubuntu `sudo apt-get install bubblewrap`, then `npm run demo` again;",
  "on macOS, in a Linux VM or container with bubblewrap (docs/sandbox.md#platforms).",
  "",
  "",
].join("\n");

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(REPO_ROOT, "bin", "auto-harness.js");

export type DemoProvider = "anthropic" | "openai";

export interface DemoSetting {
  /** false where bubblewrap is missing: the agent runs unsealed (`sandbox: none`), and the banner says so. */
  sealed?: boolean;
  /** Tasks sealed away and scored once at the end, so the morning's verdict has something to say. */
  holdoutFraction?: number;
  /** Shown beside the spend, as a real night's budget is. */
  budgetUsd?: number;
  /** The format the agent calls its model in; with OpenAI's, its provider is the test server at `serverUrl`. */
  provider?: DemoProvider;
  serverUrl?: string;
}

export function demoConfig(maxIterations: number, python = false, setting: DemoSetting = {}): string {
  const openai = setting.provider === "openai";
  return [
    "# Offline demo: both models are simulated by the local test LLM server (dev/demo/).",
    "benchmark: example",
    // Unless told, what this machine can do: unsealed where bubblewrap is missing.
    ...((setting.sealed ?? findBwrap() !== null) === false
      ? [
          "# bubblewrap is not installed here: the agent under test runs unsealed (see docs/sandbox.md#platforms).",
          "sandbox: none",
        ]
      : []),
    ...(setting.holdoutFraction === undefined ? [] : [`holdout_fraction: ${setting.holdoutFraction}`]),
    ...(setting.budgetUsd === undefined ? [] : [`budget_usd: ${setting.budgetUsd}`]),
    ...(python
      ? ["# The agent under optimization is Python (agent/templates/example.py), run by the Python runtime."]
      : []),
    ...(python ? ["agent_file: agent/agent.py"] : []),
    ...(openai
      ? [
          "# The agent calls its model in OpenAI's format with the openai package (agent/templates/example-openai.ts),",
          "# through the harness's gateway; its provider is the test server.",
          "agent_model: openai/simulated-agent",
          "providers:",
          `  openai: { format: openai, base_url: "${setting.serverUrl ?? ""}/v1", api_key_env: null }`,
        ]
      : ["agent_model: simulated-agent"]),
    "coding_model: simulated-coder",
    `max_iterations: ${maxIterations}`,
    "patience: 5",
    "max_concurrency: 8",
    "per_task_timeout: 30",
    "coding_task_run_budget: 0",
    "# Made-up prices, so the report's spend chart has something to show.",
    "prices:",
    "  simulated-agent: { input: 3, output: 15 }",
    "  simulated-coder: { input: 15, output: 75 }",
    "",
  ].join("\n");
}

// biome-ignore lint/suspicious/noExplicitAny: pino lines are arbitrary JSON
type LogLine = Record<string, any>;

// Step bookkeeping and per-task progress: in the log file, too much for a demo's terminal.
const QUIET = /^(\w+ (started|done)|task finished|benchmark run (started|finished)|starting run .*)$/;
// Every benchmark run logs that it is unsealed; the banner said so, and once is enough on a terminal.
const ONCE = /^the agent under test runs unsealed/;
const shownOnce = new Set<string>();

/** One short human line per daemon log event worth showing; null to skip it (or one already shown once). */
export function condense(line: LogLine, seen: Set<string> = shownOnce): string | null {
  const msg = typeof line.msg === "string" ? line.msg : "";
  if (!msg || QUIET.test(msg) || line.level === "debug" || line.level === "trace") return null;
  if (ONCE.test(msg)) {
    if (seen.has(msg)) return null;
    seen.add(msg);
  }
  const where = [typeof line.iteration === "number" ? `iteration ${line.iteration}` : null, line.step]
    .filter(Boolean)
    .join(" · ");
  let detail = "";
  if (line.gateStep === "suite_and_test") {
    const score = typeof line.valScore === "number" ? line.valScore.toFixed(4) : "n/a";
    const best = typeof line.previousBest === "number" ? line.previousBest.toFixed(4) : "n/a";
    detail = `: suite ${line.suitePassed}/${line.suiteTotal}, val_score ${score} (best so far ${best})`;
  } else if (Array.isArray(line.promoted) && line.gateStep === "promotion") {
    detail = `: ${line.promoted.length}`;
  }
  // Multi-line messages (type errors) stay visibly under their event.
  return `  ${where ? `[${where}] ` : ""}${msg}${detail}`.replace(/\n/g, "\n      ");
}

/** Prints what the simulated coding model decided (its `finish` calls), labelled as simulated. */
export function narrate(step: ScriptStep, out: NodeJS.WritableStream): ScriptStep {
  if (!("reply" in step)) return step;
  for (const block of step.reply.content) {
    if (block.type !== "tool_use" || block.name !== "finish") continue;
    // biome-ignore lint/suspicious/noExplicitAny: the finish input is the model's JSON
    const input = block.input as any;
    if (Array.isArray(input?.patterns)) {
      out.write(`  ${SIMULATED_PREFIX} analysis: ${input.patterns.join("; ")}\n`);
    } else if (typeof input?.hypothesis === "string") {
      out.write(`  ${SIMULATED_PREFIX} edit: ${String(input.change_summary).replace(`${SIMULATED_PREFIX} `, "")}\n`);
    }
  }
  return step;
}

function run(args: string[], cwd: string, env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const pipe = (stream: NodeJS.ReadableStream) => {
      createInterface({ input: stream }).on("line", (text) => {
        if (text.startsWith("{")) {
          try {
            const shown = condense(JSON.parse(text) as LogLine);
            if (shown) out.write(`${shown}\n`);
            return;
          } catch {
            // Not JSON after all: print it as it is.
          }
        }
        out.write(`  ${text}\n`);
      });
    };
    pipe(child.stdout);
    pipe(child.stderr);
    child.on("error", reject);
    child.on("close", (code) => resolvePromise(code ?? 1));
  });
}

function git(cwd: string, args: string[]): string {
  return execFileSync("git", args, { cwd, encoding: "utf8" });
}

export interface DemoOptions {
  dir?: string;
  iterations?: number;
  /** Improve the Python agent (agent/agent.py) instead of the TypeScript one. */
  python?: boolean;
  /** The format the agent calls its model in: the Messages API through ctx.client, or OpenAI's through `openai`. */
  provider?: DemoProvider;
  stdout?: NodeJS.WritableStream;
}

/**
 * The OpenAI demo's agent imports `openai` from its experiment's node_modules: the harness's own copy, linked in
 * as pnpm links a package, and the template it starts from.
 */
function openaiAgent(dir: string): void {
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  symlinkSync(join(REPO_ROOT, "node_modules", "openai"), join(dir, "node_modules", "openai"));
  mkdirSync(join(dir, "agent"), { recursive: true });
  copyFileSync(join(REPO_ROOT, "agent", "templates", "example-openai.ts"), join(dir, "agent", "agent.ts"));
  writeFileSync(join(dir, ".gitignore"), "node_modules/\n");
}

/** Runs the demo; returns the exit code. */
export async function runDemo(options: DemoOptions = {}): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const started = Date.now();
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const dir = resolve(options.dir ?? join(REPO_ROOT, ".demo", stamp));
  if (existsSync(join(dir, "experiment_config.yaml"))) {
    out.write(`${dir} already holds an experiment; pick a fresh --dir\n`);
    return 2;
  }
  const provider = options.provider ?? "anthropic";
  if (provider === "openai" && options.python) {
    out.write("--provider openai runs the TypeScript agent on the openai package; leave out --python\n");
    return 2;
  }
  mkdirSync(dir, { recursive: true });
  // Its own repository: inside ours, prepare would otherwise commit into the harness's history.
  git(dir, ["init", "-q"]);
  const agentFile = options.python ? "agent/agent.py" : "agent/agent.ts";
  const sealed = findBwrap() !== null;

  const server = await startTestLlmServer({
    // What its model list shows: an OpenAI-format provider is checked against it before the run.
    models: ["simulated-agent", "simulated-coder"],
    responder: (req, index) => {
      if (isCodingAgentRequest(req)) return narrate(simulatedCodingModel(req, index), out);
      const messages = req.path.startsWith("/v1/chat/completions") ? asMessagesRequest(req) : req;
      return simulatedAgentModel(messages, index);
    },
  });
  writeFileSync(
    join(dir, "experiment_config.yaml"),
    demoConfig(options.iterations ?? 4, options.python ?? false, {
      sealed,
      holdoutFraction: DEMO_HOLDOUT,
      budgetUsd: 20,
      provider,
      serverUrl: server.url,
    }),
  );
  if (provider === "openai") openaiAgent(dir);
  const env: NodeJS.ProcessEnv = { ...process.env, ANTHROPIC_BASE_URL: server.url, LOG_LEVEL: "info" };
  // No real key may leak into a demo: the local server needs none.
  delete env.ANTHROPIC_API_KEY;
  const rel = (p: string) => relative(process.cwd(), p) || ".";
  out.write(`auto-harness offline demo in ${rel(dir)}\n`);
  if (!sealed) out.write(UNSEALED_BANNER);
  out.write(
    `Both models are simulated: replies come from a local test server (${server.url}), marked "${SIMULATED_PREFIX}".\n`,
  );
  out.write(
    provider === "openai"
      ? "The agent calls its model in OpenAI's format (Chat Completions, the openai package) through the harness's gateway.\n\n"
      : "\n",
  );
  try {
    out.write("$ auto-harness prepare\n");
    let code = await run(["prepare", "--dir", dir], dir, env, out);
    if (code !== 0) return code;
    out.write("\n$ auto-harness run\n");
    code = await run(["run", "--dir", dir], dir, env, out);
    if (code !== 0) return code;
    out.write("\n$ auto-harness report\n");
    code = await run(["report", "--dir", dir], dir, env, out);
    if (code !== 0) return code;
  } finally {
    await server.close();
  }

  const ws = join(dir, "workspace");
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  out.write(`\nDone in ${seconds}s. What it left behind:\n\n`);
  out.write(`git log of ${agentFile} (only accepted changes):\n`);
  out.write(indent(git(dir, ["log", "--format=%h %s%n        %(trailers:key=Harness-Run)", "--", agentFile])));
  out.write(`\n${rel(join(ws, "results.tsv"))}:\n${indent(readFileSync(join(ws, "results.tsv"), "utf8"))}`);
  const headings = readFileSync(join(ws, "learnings.md"), "utf8")
    .split("\n")
    .filter((l) => l.startsWith("## "));
  out.write(`\n${rel(join(ws, "learnings.md"))}:\n${indent(headings.join("\n"))}\n`);
  out.write(`\njournal:  ${rel(join(ws, "journal.sqlite"))}   (auto-harness status --dir ${rel(dir)})\n`);
  out.write(`logs:     ${rel(join(ws, "logs"))}/   (npx pino-pretty < the log file)\n`);
  out.write(`report:   ${rel(join(ws, "report.html"))}\n`);
  out.write(`view:     npx auto-harness view --dir ${rel(dir)}   (every run, round, candidate and train transcript)\n`);
  return 0;
}

function indent(text: string): string {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => `  ${l}\n`)
    .join("");
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      dir: { type: "string" },
      iterations: { type: "string" },
      python: { type: "boolean" },
      provider: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: npm run demo -- [--dir <scratch dir>] [--iterations <n>] [--python] [--provider anthropic|openai]\n",
    );
  } else if (values.provider !== undefined && values.provider !== "anthropic" && values.provider !== "openai") {
    process.stdout.write(`--provider: got ${JSON.stringify(values.provider)}; expected anthropic or openai\n`);
    process.exitCode = 2;
  } else {
    const code = await runDemo({
      ...(values.dir ? { dir: values.dir } : {}),
      ...(values.iterations ? { iterations: Number(values.iterations) } : {}),
      ...(values.python ? { python: true } : {}),
      ...(values.provider ? { provider: values.provider as DemoProvider } : {}),
    });
    process.exitCode = code;
  }
}
