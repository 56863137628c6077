/**
 * The stochastic benchmark (benchmarks/stochastic: known pass rates per task family) as a prepared experiment
 * for the gate's tests: a real git repository, a real journal, the real runner and adapter, and an executor
 * that scores each task in process with the benchmark's own scorer instead of starting agent processes, so a
 * test can run many gates in seconds. The agent's answer is read from its source (SKILLS, BREAKS, VARIANT).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import scoreStochastic from "../../benchmarks/stochastic/scorer.ts";
import { createAdapter } from "../../src/benchmark/adapters/index.ts";
import type { ExecutorItem, TaskBatch, TaskExecutor } from "../../src/benchmark/executor.ts";
import { createRunner } from "../../src/benchmark/runner.ts";
import type { BenchmarkRunner } from "../../src/benchmark/types.ts";
import { type Config, configSchema } from "../../src/config/schema.ts";
import { fitRewards, measureBaseline, recordBaseline } from "../../src/experiment/baseline.ts";
import { pinBaselineSplit } from "../../src/experiment/prepare.ts";
import { Journal } from "../../src/journal/journal.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { writeSuite } from "../../src/workspace/files.ts";
import { paths } from "../../src/workspace/paths.ts";
import { makeRepo, type TempRepo } from "../fixtures/temp-repo.ts";
import { REPO_ROOT } from "./experiment.ts";

export const STOCHASTIC = join(REPO_ROOT, "benchmarks", "stochastic");

interface Task {
  id: string;
  family: string;
  p: number;
}

/** The stochastic agent's source: the families it handles (`skills`), breaks, and its noise's seed. */
export function stochasticAgent(o: { skills?: string[]; breaks?: string[]; variant: string }): string {
  return `const SKILLS: string[] = ${JSON.stringify(o.skills ?? [])};\nconst BREAKS: string[] = ${JSON.stringify(o.breaks ?? [])};\nconst VARIANT = ${JSON.stringify(o.variant)};\n\nexport default {\n  run: async () => ({ skills: SKILLS, breaks: BREAKS, variant: VARIANT }),\n};\n`;
}

function answerOf(source: string): { skills: string[]; breaks: string[]; variant: string } {
  const list = (name: string) =>
    JSON.parse(new RegExp(`const ${name}: string\\[\\] = (\\[.*?\\]);`).exec(source)?.[1] ?? "[]");
  return {
    skills: list("SKILLS"),
    breaks: list("BREAKS"),
    variant: /const VARIANT = "([^"]*)"/.exec(source)?.[1] ?? "",
  };
}

/** Scores each task in process with the benchmark's scorer; `batches` counts what it was asked to run. */
export function stochasticExecutor(tasksFile = join(STOCHASTIC, "tasks.jsonl")): TaskExecutor & { ran: TaskBatch[] } {
  const tasks = new Map<string, Task>(
    readFileSync(tasksFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Task)
      .map((t) => [t.id, t]),
  );
  const ran: TaskBatch[] = [];
  return {
    ran,
    run(batch) {
      ran.push(batch);
      const answer = answerOf(readFileSync(batch.agentFile, "utf8"));
      return {
        async *[Symbol.asyncIterator](): AsyncGenerator<ExecutorItem[]> {
          for (const trial of batch.trials)
            for (const id of batch.taskIds) {
              const reward = scoreStochastic(tasks.get(id)!, { answer, trial });
              yield [
                {
                  kind: "task",
                  taskId: id,
                  trial,
                  reward,
                  durationMs: 1,
                  error: null,
                  events: null,
                  answer,
                  llmCalls: [],
                },
              ];
            }
        },
      };
    },
  };
}

export interface StochasticExperiment {
  repo: TempRepo;
  root: string;
  config: Config;
  journal: Journal;
  log: Logger;
  runner: BenchmarkRunner;
  executor: ReturnType<typeof stochasticExecutor>;
  /** Writes the agent file (the candidate in the working tree). */
  setAgent(source: string): void;
  close(): void;
}

/** A prepared experiment: the baseline measured, the split pinned, the reward model fitted (as `prepare` does). */
export async function stochasticExperiment(
  name: string,
  config: Record<string, unknown> = {},
): Promise<StochasticExperiment> {
  const repo = makeRepo(name, { "agent/agent.ts": stochasticAgent({ variant: "v0" }) });
  const root = repo.root;
  const parsed = configSchema.parse({
    benchmark: "local",
    local: { tasks: join(STOCHASTIC, "tasks.jsonl"), scorer: join(STOCHASTIC, "scorer.ts") },
    seed: 7,
    max_concurrency: 8,
    sandbox: "none",
    ...config,
  });
  const p = paths(root);
  const journal = Journal.open(p.journal);
  const log = createLogger({ stdout: false }).log;
  const executor = stochasticExecutor();
  const runner = createRunner({
    root,
    config: parsed,
    journal,
    log,
    adapter: createAdapter(parsed, root, log),
    executor,
  });
  writeSuite(p.suite, { tasks: [], threshold: parsed.threshold, last_results: {} });
  writeFileSync(p.results, "iteration\tval_score\tcommit\tevals_passed\tevals_total\ttimestamp\n");
  const all = await runner.listTasks();
  const baseline = await measureBaseline({ runner, journal, taskIds: all, trials: parsed.trials });
  const now = new Date();
  const { split } = pinBaselineSplit({ root, config: parsed, paths: p, journal }, baseline, all.length, now);
  recordBaseline({ journal, results: p.results, split, baseline, evalsTotal: 0, now });
  await fitRewards({ runner, journal, baseline, trainIds: split.train, trials: parsed.trials });
  return {
    repo,
    root,
    config: parsed,
    journal,
    log,
    runner,
    executor,
    setAgent: (source) => repo.write("agent/agent.ts", source),
    close: () => {
      journal.close();
      repo.cleanup();
    },
  };
}
