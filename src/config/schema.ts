import { z } from "zod";
import { pairedGateKeys } from "./gate-keys.ts";

/**
 * experiment_config.yaml. Every field carries a description: the README's configuration
 * reference is generated from this schema (and a test keeps the two in step).
 */
export const configSchema = z.strictObject({
  benchmark: z
    .enum(["example", "local", "command"])
    .describe(
      "Which benchmark adapter runs the tasks: the built-in `example`, your own `local` TypeScript tasks, or an external `command`.",
    ),
  agent_file: z
    .string()
    .regex(/^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[^\\]+\.(?:ts|py)$/, {
      message: "must be a relative path inside the experiment ending in .ts or .py, e.g. agent/agent.py",
    })
    .default("agent/agent.ts")
    .describe(
      "The agent under optimization, relative to the experiment directory: TypeScript (`.ts`) or Python (`.py`). The coding agent may edit it, and only it unless `editable` names more.",
    ),
  editable: z
    .array(z.string().min(1))
    .default([])
    .describe(
      "More files the coding model may change besides `agent_file`, as paths or patterns inside the agent's folder (`*` within a folder name, `**` across folders), e.g. `[agent/prompts/*.md]`. The file guard, the hard-coding check, the load check, the diff, the commit and the candidates' copies cover them all; the whole agent folder is in the sandbox.",
    ),
  candidates: z
    .int()
    .min(1)
    .max(8)
    .default(1)
    .describe(
      "Candidates per round: each takes a different failure pattern from the analysis and edits its own copy of the agent, the coding sessions running at once (within `max_concurrency` and `budget_usd`); their train runs screen them, the survivors race the incumbent on the same held-out draws, and at most one is accepted (`gate_rule: paired` only). 1 keeps one edit per round; in bench:night's simulated nights 4 bought 1.7–1.9× the true gain of 1 at fewer dollars per true point and no more bad accepts (docs/gate.md), so `init` writes 4; a config without the key keeps 1, as it always did.",
    ),
  python: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe(
      "A Python agent's interpreter, relative to the experiment or absolute, e.g. `.venv/bin/python` (a virtualenv made with `python3 -m venv`): the agent runs under it with its packages, bound read-only into its sandbox (null: the system's /usr/bin/python3, standard library only).",
    ),
  agent_model: z
    .string()
    .min(1)
    .default("claude-sonnet-4-6")
    .describe(
      "Model the agent under optimization calls, as `provider/model` (e.g. `openai/gpt-5-mini`; a bare name is an Anthropic model); handed to the agent through its context, never hard-coded.",
    ),
  agent_models: z
    .array(z.string().min(1))
    .default([])
    .describe(
      "More models the agent may call besides `agent_model`, each `provider/model` or a bare Anthropic name; the gateway refuses a call to any other model.",
    ),
  providers: z
    .record(
      z.string().regex(/^[a-z][a-z0-9_-]*$/),
      z.strictObject({
        format: z
          .enum(["anthropic", "openai"])
          .describe("The API it speaks: `anthropic` (Messages) or `openai` (Chat Completions and Responses)."),
        base_url: z
          .url({ protocol: /^https?$/, error: "expected an http(s) URL, e.g. http://127.0.0.1:8000/v1" })
          .nullable()
          .default(null)
          .describe(
            "Where it listens (null: ANTHROPIC_BASE_URL or https://api.anthropic.com for `anthropic`, https://api.openai.com/v1 for `openai`).",
          ),
        api_key_env: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected the name of an environment variable, e.g. OPENAI_API_KEY")
          .nullable()
          .default(null)
          .describe("Environment variable holding its key (null: no key, e.g. a local vLLM or Ollama)."),
        betas: z
          .array(
            z.string().regex(/^[a-z0-9-]+$/, "expected an anthropic-beta value, e.g. interleaved-thinking-2025-05-14"),
          )
          .nullable()
          .default(null)
          .describe(
            "`anthropic` format: the `anthropic-beta` values the agent may send (null: the gateway's own list).",
          ),
      }),
      {
        error: (issue) =>
          issue.code === "invalid_key" ? "a provider's name is lower-case letters, digits, `-` or `_`" : undefined,
      },
    )
    .default({})
    .describe(
      "Model providers the agent may call through the harness's gateway, by name, e.g. `{ local: { format: openai, base_url: http://127.0.0.1:8000/v1 } }`; `anthropic` and `openai` are built in. Keys stay in the harness's environment.",
    ),
  coding_model: z
    .string()
    .min(1)
    .default("claude-opus-4-6")
    .describe("Model of the coding agent that analyzes failures and edits the agent file."),
  coding_models: z
    .array(z.string().min(1))
    .default([])
    .describe(
      "Coding models taken in turn at each change of the proposer's angle (`plateau_rounds`): the first change takes the first, and so on round the list, e.g. `[claude-sonnet-4-6, claude-opus-4-6]`; `coding_model` until the first change ([]: `coding_model` throughout).",
    ),
  plateau_rounds: z
    .int()
    .min(0)
    .default(0)
    .describe(
      "Rounds without an acceptance after which the loop changes the proposer's angle: a fresh analysis without the learnings, on a failure pattern not yet tried, with the next of `coding_models`; also when the next acceptance is forecast to cost more than the night has left. 0: never (bench:night measured no gain from it).",
    ),
  split: z.literal("train").default("train").describe("Split the loop benchmarks and the coding agent may read."),
  gate_split: z
    .literal("test")
    .default("test")
    .describe("Split the gate scores; its traces are never written anywhere."),
  max_concurrency: z.int().min(1).max(256).default(4).describe("Tasks run at the same time."),
  executor: z
    .enum(["local", "bullmq"])
    .default("local")
    .describe(
      "Where benchmark tasks run: `local` in this machine's sandboxed process pool, or `bullmq` on `auto-harness worker` processes on any machine, through Redis at `redis_url`.",
    ),
  redis_url: z
    .string()
    .regex(/^rediss?:\/\/\S+$/, "expected a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379")
    .nullable()
    .default(null)
    .describe("Redis the `bullmq` executor and its workers share, e.g. redis://queue-host:6379 (null: none)."),
  redis_outage_minutes: z
    .number()
    .positive()
    .default(5)
    .describe(
      "Redis unreachable this long during a benchmark or gate on `bullmq` pauses the run (resumable, exit 75).",
    ),
  threshold: z
    .number()
    .min(0)
    .max(1)
    .default(0.8)
    .describe(
      "`original`: pass rate the regression suite must reach (a task passes at reward ≥ 0.5). Read from here at every gate; suite.json records the value used.",
    ),
  gate_rule: z
    .enum(["paired", "bayes", "original"])
    .default("paired")
    .describe(
      "How the gate decides: `paired` runs each candidate and the incumbent on the same held-out tasks in one batch and accepts only on that paired evidence, within the night's error budget `gate_night_budget` (see \"How the gate decides\"); `bayes`, the previous default, asks task by task whether the edit fixed or broke it against the incumbent's history; `original` accepts when val_score ≥ the best so far and the suite reaches `threshold`.",
    ),
  ...pairedGateKeys,
  gate_tau: z
    .number()
    .gt(0)
    .lt(1)
    .default(0.55)
    .describe(
      "`bayes` only: accept when the probability of a real improvement is above this (0.75 suits ≈ 100 held-out tasks).",
    ),
  gate_train_weight: z
    .number()
    .min(0)
    .max(1)
    .default(1)
    .describe(
      "`bayes` only: weight of the candidate's train results as evidence (0.5 when the coding agent may overfit the train tasks it saw fail).",
    ),
  trials: z
    .int()
    .min(1)
    .max(10)
    .default(1)
    .describe(
      "`bayes` only: runs of each held-out task per candidate in the gate's first pass (more for a noisy benchmark); also the runs per task of the baseline and of the sealed holdout.",
    ),
  holdout_fraction: z
    .number()
    .min(0)
    .max(0.5)
    .nullable()
    .default(null)
    .describe(
      "Share of the tasks sealed away at prepare, kept out of every gate and scored once at the end of the run for the baseline and the final agent (null: 0.2 with at least 60 tasks, else 0).",
    ),
  patience: z
    .int()
    .min(1)
    .default(5)
    .describe(
      "Stop after this many consecutive iterations without a new best val_score (with `gate_rule: paired` or `bayes`: without an accepted change).",
    ),
  max_iterations: z.int().min(1).nullable().default(null).describe("Stop after this many iterations (null: no limit)."),
  budget_usd: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe(
      "Money limit of a run, coding agent and agent under test together: no coding call or task starts past it, and the run stops cleanly (null: no limit).",
    ),
  deadline: z.iso
    .datetime({ offset: true })
    .nullable()
    .default(null)
    .describe("ISO-8601 time after which no new iteration starts, e.g. 2026-11-25T07:00:00Z (null: none)."),
  max_hours: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe(
      "Hours a run may take from its start, after which no new iteration starts (null: no limit); unlike `deadline`, it suits a nightly `daemon --new`.",
    ),
  per_task_timeout: z
    .number()
    .positive()
    .max(86_400)
    .default(300)
    .describe("Seconds one task may run before it is killed and scored."),
  sandbox: z
    .enum(["bwrap", "none"])
    .default("bwrap")
    .describe(
      "How the agent under test is sealed: `bwrap` (bubblewrap: read-only view of what it needs, no network, no secrets, nothing outlives a batch) or `none` (runs unsealed; marked so in status, logs and the report).",
    ),
  sandbox_user: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, "expected a user name or a numeric uid, e.g. nobody")
    .default("nobody")
    .describe(
      "When the harness runs as root: the unprivileged user (a name or a uid; never root) every agent process and a sandboxed `command` run as, with no capabilities. Ignored when the harness is not root: the agent then runs as the harness's own user, in its own user namespace.",
    ),
  sandbox_limits: z
    .strictObject({
      processes: z
        .int()
        .min(32)
        .max(65_536)
        .default(256)
        .describe(
          "Processes and threads one agent process's sandbox may hold (a Node agent process uses about a dozen).",
        ),
      memory_mb: z
        .int()
        .min(128)
        .default(2048)
        .describe("MiB of memory: for the whole sandbox under cgroup v2, for each process in it under rlimits."),
      tmp_mb: z.int().min(1).default(256).describe("MiB the sandbox's private /tmp may hold."),
      request_mb_per_task: z
        .number()
        .positive()
        .default(64)
        .describe(
          "MiB of model request bodies one task may send (the harness keeps them for its trace); past it the task ends as the agent's failure.",
        ),
      cgroup: z
        .string()
        .regex(/^\//, "expected an absolute path, e.g. /sys/fs/cgroup/auto-harness")
        .nullable()
        .default(null)
        .describe(
          "A delegated cgroup v2 directory, writable by the harness with `memory` and `pids` in its cgroup.subtree_control, in which each agent process gets its own cgroup (null: the harness's own cgroup when it is such a directory, else rlimits).",
        ),
    })
    .prefault({})
    .describe(
      "Limits of every agent process, set by the harness: a limit the agent hits is its task's failure. `status` says whether cgroup v2 or rlimits enforce them; the wall time is `per_task_timeout`.",
    ),
  seed: z.int().default(42).describe("Seed of the train/test split."),
  step_attempts: z
    .int()
    .min(1)
    .max(10)
    .default(3)
    .describe("Times a failing step is tried before the run pauses for the operator (fix the cause, then `resume`)."),
  infra_error_share: z
    .number()
    .min(0)
    .max(1)
    .default(0.5)
    .describe(
      "Share of a benchmark run's tasks that may end in an infrastructure error before the step fails as infrastructure (not the agent's fault).",
    ),
  reuse_results: z
    .boolean()
    .default(true)
    .describe("Reuse journaled task results of an unchanged agent file instead of running the tasks again."),
  coding_max_turns: z
    .int()
    .min(1)
    .default(30)
    .describe("Model turns per coding-agent phase before it stops without `finish`."),
  coding_max_tokens: z.int().min(256).default(8192).describe("`max_tokens` of each coding-agent call."),
  coding_max_phase_tokens: z
    .int()
    .min(1)
    .nullable()
    .default(null)
    .describe("Input + output tokens per coding-agent phase before it stops (null: no limit)."),
  coding_task_run_budget: z
    .int()
    .min(0)
    .default(10)
    .describe("Train task runs the coding agent may spend per iteration to test a hypothesis."),
  coding_max_result_chars: z
    .int()
    .min(1000)
    .default(20_000)
    .describe("Longest tool result handed to the coding agent; longer ones are cut with a note on how to page."),
  llm_outage_minutes: z
    .number()
    .positive()
    .default(30)
    .describe("Continuous API failure after which the run pauses (resumable) instead of retrying further."),
  prices: z
    .record(
      z.string(),
      z.strictObject({
        input: z.number().nonnegative(),
        output: z.number().nonnegative(),
        cacheWrite: z.number().nonnegative().optional(),
        cacheRead: z.number().nonnegative().optional(),
      }),
    )
    .default({})
    .describe(
      "Price overrides and additions, USD per million tokens, by model-name prefix or `provider/model` prefix, e.g. `{ claude-sonnet-4: { input: 3, output: 15 }, local/: { input: 0, output: 0 } }`; a model with no known price is refused before anything is paid.",
    ),
  local: z
    .strictObject({
      tasks: z.string().min(1).describe("JSONL file of tasks, one object with an `id` per line."),
      scorer: z.string().min(1).describe("TypeScript module whose default export scores a task's result."),
    })
    .optional()
    .describe("Settings of the `local` adapter."),
  command: z
    .strictObject({
      run: z.string().min(1).describe("Shell command that runs the benchmark (see the command adapter contract)."),
      timeout: z.number().positive().default(3600).describe("Seconds one invocation may take."),
      sandbox: z
        .boolean()
        .default(false)
        .describe(
          "Run the command under bubblewrap: the whole file system read-only (the experiment included), a private /tmp, only the results and traces folders (and `writable`) writable.",
        ),
      network: z
        .boolean()
        .default(true)
        .describe(
          "With `sandbox`: keep the network (a benchmark that fetches data or calls a provider outside the gateway needs it); false gives it none, and its model calls still reach the run's gateway.",
        ),
      writable: z
        .array(z.string().min(1))
        .default([])
        .describe(
          "With `sandbox`: more folders the command may write (caches, its own output), relative to the experiment or absolute.",
        ),
    })
    .optional()
    .describe("Settings of the `command` adapter."),
});

export type Config = z.infer<typeof configSchema>;
export type ProviderConfig = Config["providers"][string];
export type ProviderFormat = ProviderConfig["format"];

/** Providers every config has; a configured one of the same name replaces it. */
export const BUILT_IN_PROVIDERS: Readonly<Record<string, ProviderConfig>> = {
  anthropic: { format: "anthropic", base_url: null, api_key_env: "ANTHROPIC_API_KEY", betas: null },
  openai: { format: "openai", base_url: null, api_key_env: "OPENAI_API_KEY", betas: null },
};

export function providersOf(config: Pick<Config, "providers">): Record<string, ProviderConfig> {
  return { ...BUILT_IN_PROVIDERS, ...config.providers };
}

export interface ModelRef {
  provider: string;
  model: string;
}

/**
 * `provider/model` → its parts, split at the first `/` (a model may have more: `local/Qwen/Qwen3-8B`); a name
 * without one is an Anthropic model, so configs from before providers keep their meaning.
 */
export function modelRef(ref: string): ModelRef {
  const slash = ref.indexOf("/");
  return slash <= 0
    ? { provider: "anthropic", model: ref }
    : { provider: ref.slice(0, slash), model: ref.slice(slash + 1) };
}
export type ConfigInput = z.input<typeof configSchema>;
