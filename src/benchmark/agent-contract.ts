/**
 * The contract between the harness and an agent file (`agent/agent.ts`). Types only.
 *
 * The agent file's default export is either an object `{ run(task, ctx) }` or a class whose
 * instances have `run(task, ctx)` (constructed once per benchmark run, with no arguments).
 * `run` returns the final answer (any JSON-serialisable value; the example benchmark expects a string).
 *
 * The agent runs sealed (bubblewrap): it sees node, the SDK and its own file, read-only, and a private /tmp;
 * no network, no environment variables, nothing of the experiment directory or the benchmark's answers.
 * The agent lives in the operator's experiment directory, so it may import types only, and only from
 * "@anthropic-ai/sdk" (`import type Anthropic from "@anthropic-ai/sdk"`): type imports are erased at load,
 * value imports would not resolve there. Everything it needs at run time comes through `ctx`.
 *
 * - `ctx.model` is the config's `agent_model`; an agent must not hard-code a model.
 * - `ctx.client` is an Anthropic SDK client whose requests the harness forwards to the configured endpoint
 *   (the agent's process has no network and no key; only the Messages API is forwarded). The harness
 *   records every request and response in the task's train trace and journals the usage it reads from
 *   the replies as "agent" spend. For the test split nothing of the exchange is kept, only the usage counts.
 * - `ctx.trace.note(message, data?)` adds the agent's own notes to the train trace (size-capped, marked as the agent's).
 * - `ctx.signal` aborts when the task is cancelled (timeout, shutdown); pass it to SDK calls.
 * - `ctx.env` is benchmark-specific; its functions run in the harness (arguments and results must be JSON).
 *   For the example benchmark: `env.execute(toolName, input)` runs a tool against the task's own copy of the
 *   database, kept by the harness, and returns its result (an object; errors come back as
 *   `{ error: string }`, they do not throw); `env.tools` lists the tools' names.
 */
import type Anthropic from "@anthropic-ai/sdk";

/** What the agent sees of a task: its id and its input (never the grading fields). */
export interface AgentTask<Input = unknown> {
  id: string;
  input: Input;
}

export interface AgentTrace {
  note(message: string, data?: unknown): void;
}

export interface AgentContext<Env = unknown> {
  model: string;
  client: Anthropic;
  trace: AgentTrace;
  signal: AbortSignal;
  env: Env;
}

export interface Agent<Input = unknown, Env = unknown> {
  run(task: AgentTask<Input>, ctx: AgentContext<Env>): unknown;
}

/** The shape of an agent file's module. */
export interface AgentModule {
  default: Agent | (new () => Agent);
}

/** The example benchmark's env. */
export interface ExampleEnv {
  tools: string[];
  execute(tool: string, input: Record<string, unknown>): Promise<unknown>;
}
