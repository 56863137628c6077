/** The CLI's `benchmark --split train|test [--task-ids a,b]`. */

import { createAdapter } from "../benchmark/adapters/index.ts";
import type { Adapter } from "../benchmark/adapters/types.ts";
import { createRunner, type RunnerOptions } from "../benchmark/runner.ts";
import type { Progress } from "../benchmark/types.ts";
import type { Config } from "../config/schema.ts";
import type { Split } from "../domain.ts";
import type { Logger } from "../log.ts";
import { passes } from "../scoring.ts";
import { writeTrainResults } from "../workspace/files.ts";
import { paths } from "../workspace/paths.ts";

export interface BenchmarkCommandOptions {
  root: string;
  config: Config;
  journal: RunnerOptions["journal"];
  log: Logger;
  split: Split;
  taskIds?: string[];
  stdout: NodeJS.WritableStream;
  signal?: AbortSignal;
  /** Defaults to the one `config.benchmark` names. */
  adapter?: Adapter;
  runner?: Partial<Omit<RunnerOptions, "root" | "config" | "journal" | "log" | "adapter">>;
  /** Where the progress bar is drawn; default stderr when it is a terminal, else none. */
  progress?: NodeJS.WritableStream | null;
}

/** A one-line bar redrawn in place; counts only, so it is safe for the test split. */
export function progressBar(stream: NodeJS.WritableStream | null) {
  if (!stream) return null;
  return {
    update: (p: Progress) => {
      const width = 30;
      const filled = Math.round((p.done / Math.max(1, p.total)) * width);
      stream.write(
        `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${p.done}/${p.total}  pass ${(p.passRate * 100).toFixed(0)}%  eta ${p.etaS}s `,
      );
    },
    done: () => stream.write("\n"),
  };
}

/** Runs the split; train prints a PASS/FAIL line per task and writes train_results.json, test prints the score only. Returns the exit code. */
export async function runBenchmarkCommand(o: BenchmarkCommandOptions): Promise<number> {
  const adapter = o.adapter ?? createAdapter(o.config, o.root, o.log);
  const runner = createRunner({ ...o.runner, root: o.root, config: o.config, journal: o.journal, log: o.log, adapter });
  const bar = progressBar(o.progress ?? (process.stderr.isTTY ? process.stderr : null));
  const summary = await runner.run({
    split: o.split,
    runId: null,
    ...(o.taskIds && o.taskIds.length > 0 ? { taskIds: o.taskIds } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(bar ? { onProgress: bar.update } : {}),
  });
  bar?.done();
  const score = summary.score === null ? "n/a" : summary.score.toFixed(4);
  if (o.split === "train") {
    for (const [id, reward] of Object.entries(summary.results).sort(([a], [b]) => a.localeCompare(b))) {
      const verdict = reward === null ? "ERROR" : passes(reward) ? "PASS" : "FAIL";
      o.stdout.write(`${verdict}  ${id}  ${reward === null ? "-" : reward.toFixed(2)}\n`);
    }
    writeTrainResults(paths(o.root).trainResults, summary.results);
    o.stdout.write(
      `train score ${score}: ${summary.passed}/${summary.total} passed${summary.infraErrors ? `, ${summary.infraErrors} infrastructure errors` : ""}\n`,
    );
  } else {
    o.stdout.write(`test score ${score}\n`);
  }
  return 0;
}
