/** Shared set-up for the benchmark tests: a real experiment dir with a local benchmark, journal and captured logs. */

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach } from "vitest";
import type { TestLlmServer } from "../../dev/llm-server/llm-server.ts";
import { createLocalAdapter } from "../../src/benchmark/adapters/local.ts";
import { createRunner, type RunnerOptions } from "../../src/benchmark/runner.ts";
import { type ConfigInput, configSchema } from "../../src/config/schema.ts";
import { Journal } from "../../src/journal/journal.ts";
import { createLogger } from "../../src/log.ts";
import { writeSplit } from "../../src/workspace/files.ts";
import { paths } from "../../src/workspace/paths.ts";
import { sandboxHere } from "./experiment.ts";

export const DEFAULT_SCORER = `export default (task: { expected?: string }, result: { answer: unknown }) =>
  result.answer === task.expected ? 1 : 0;
`;

export interface Experiment {
  root: string;
  journal: Journal;
  logs: string[];
  log: ReturnType<typeof createLogger>["log"];
  writeAgent(source: string): void;
  runner(extra?: Partial<RunnerOptions>): ReturnType<typeof createRunner>;
  cleanup(): void;
}

export function makeExperiment(opts: {
  tasks: Record<string, unknown>[];
  agent: string;
  scorer?: string;
  config?: Partial<ConfigInput>;
  split?: { train: string[]; test: string[] };
  baseURL: string;
}): Experiment {
  const root = mkdtempSync(join(tmpdir(), "bench-test-"));
  mkdirSync(join(root, "agent"), { recursive: true });
  mkdirSync(join(root, "bench"), { recursive: true });
  writeFileSync(join(root, "bench", "tasks.jsonl"), `${opts.tasks.map((t) => JSON.stringify(t)).join("\n")}\n`);
  writeFileSync(join(root, "bench", "scorer.ts"), opts.scorer ?? DEFAULT_SCORER);
  const writeAgent = (source: string) => writeFileSync(paths(root).agentFile, source);
  writeAgent(opts.agent);
  mkdirSync(paths(root).workspace, { recursive: true });
  if (opts.split) {
    writeSplit(paths(root).split, {
      seed: 1,
      created_at: new Date(0).toISOString(),
      ...opts.split,
      excluded: [],
      counts: {
        train: opts.split.train.length,
        test: opts.split.test.length,
        train_passing: 0,
        test_passing: 0,
        excluded: 0,
      },
    });
  }
  const journal = Journal.open(paths(root).journal);
  // As `prepare` leaves it: the journal pins the split, the file is its view.
  if (opts.split) journal.pins.pin("split", readFileSync(paths(root).split, "utf8"));
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const { log } = createLogger({ stdout: false, stream, level: "debug" });
  const config = configSchema.parse({
    benchmark: "local",
    local: { tasks: "bench/tasks.jsonl", scorer: "bench/scorer.ts" },
    max_concurrency: 4,
    per_task_timeout: 30,
    ...sandboxHere(),
    ...opts.config,
  });
  const adapter = createLocalAdapter({
    tasksFile: join(root, "bench", "tasks.jsonl"),
    scorerFile: join(root, "bench", "scorer.ts"),
  });
  return {
    root,
    journal,
    logs,
    log,
    writeAgent,
    runner: (extra = {}) =>
      createRunner({
        root,
        config,
        journal,
        log,
        adapter,
        agentBaseURL: opts.baseURL,
        agentApiKey: "test-key-local",
        agentMaxRetries: 0,
        typeCheck: false,
        ...extra,
      }),
    cleanup: () => {
      journal.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** An agent that asks the model once and answers with its text; `task.input.mode` triggers misbehaviour. */
export const ECHO_AGENT = `import type Anthropic from "@anthropic-ai/sdk";
export default {
  async run(task: { id: string; input: { mode?: string; prompt?: string } }, ctx: { client: Anthropic; model: string; signal: AbortSignal; trace: { note(m: string, d?: unknown): void } }) {
    const mode = task.input.mode;
    if (mode === "loop") { for (;;) {} }
    if (mode === "hang") await new Promise(() => {});
    if (mode === "throw") throw new Error("agent exploded on purpose");
    const r = await ctx.client.messages.create({ model: ctx.model, max_tokens: 50, messages: [{ role: "user", content: task.input.prompt ?? task.id }] }, { signal: ctx.signal });
    const text = r.content.map((b) => (b.type === "text" ? b.text : "")).join("");
    ctx.trace.note("got " + text);
    return text;
  },
};
`;

/** A train task's trace as the runner wrote it. */
export function readTrace(
  e: Experiment,
  id: string,
): { events: { kind: string; message?: string; limit?: string }[]; error: string | null; answer: unknown } {
  return JSON.parse(readFileSync(join(paths(e.root).tracesLatest, id, "trace.json"), "utf8"));
}

/** The agent's notes in its train trace: how a hostile agent tells the test what it tried. */
export function agentNotes(e: Experiment, id: string): string[] {
  return (
    readTrace(e, id)
      .events.filter((ev) => ev.kind === "note")
      // The trace fences the agent's own text; the words inside are what it wrote.
      .map((ev) => (ev.message ?? "").replace(/^⟦agent⟧ /, "").replace(/ ⟦\/agent⟧$/, ""))
  );
}

/** The running test's experiment and test LLM server, both closed after it. */
export function perTestExperiment(): { server: TestLlmServer | null; exp: Experiment | null } {
  const held: { server: TestLlmServer | null; exp: Experiment | null } = { server: null, exp: null };
  afterEach(async () => {
    held.exp?.cleanup();
    held.exp = null;
    await held.server?.close();
    held.server = null;
  });
  return held;
}
