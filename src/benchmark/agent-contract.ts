/**
 * The contract between the harness and an agent file (`agent/agent.ts`). Types only.
 *
 * The agent file's default export is either an object `{ run(task, ctx) }` or a class whose
 * instances have `run(task, ctx)` (constructed once per benchmark run, with no arguments).
 * `run` returns the final answer (any JSON-serialisable value; the example benchmark expects a string).
 *
 * The agent runs sealed (bubblewrap): it sees node, its own file and the experiment's own packages, read-only,
 * and a private /tmp; no network but an endpoint on its own loopback that leads to the harness's model gateway,
 * no key, nothing else of the experiment directory or the benchmark's answers. It may import Node's built-ins
 * and the packages the experiment installed (its node_modules); type imports are erased at load.
 *
 * - `ctx.model` is the config's `agent_model`; an agent must not hard-code a model.
 * - `ctx.client` is an Anthropic SDK client whose requests go to the harness's gateway, as do an unmodified
 *   SDK's by base URL (OPENAI_BASE_URL, ANTHROPIC_BASE_URL and a placeholder key are in its environment): the
 *   gateway forwards the Messages API and OpenAI's formats, for the models the config names, with the key the
 *   harness holds. The harness records every request and response in the task's train trace and journals the
 *   usage it reads from the replies as "agent" spend, as each call is paid. For the test split nothing of the
 *   exchange is kept, only the usage counts.
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
