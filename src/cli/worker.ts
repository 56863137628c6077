/** `auto-harness worker --redis <url>`: runs the queue's tasks on this machine until stopped. */
import { join } from "node:path";
import { createAdapter } from "../benchmark/adapters/index.ts";
import { modelTargets } from "../benchmark/models.ts";
import { systemClock } from "../clock.ts";
import { createLocalTasks } from "../distributed/local-tasks.ts";
import { queueModels } from "../distributed/models.ts";
import { checkRedisUrl, connect } from "../distributed/queue.ts";
import { versionsOf } from "../distributed/versions.ts";
import { startWorker } from "../distributed/worker.ts";
import { UserError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { type GlobalOptions, openExperiment } from "./experiment.ts";

export interface WorkerCommandOptions extends GlobalOptions {
  redis: string;
  concurrency: string | number;
  lockTimeout: string | number;
  /** Install SIGINT/SIGTERM handlers (the CLI does; in-process tests don't). */
  signals?: boolean;
}

function positive(name: string, value: string | number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new UserError("USAGE", `--${name}: got ${JSON.stringify(value)}; expected an integer from 1 to ${max}`);
  return n;
}

export async function workerCommand(opts: WorkerCommandOptions): Promise<number> {
  const redisUrl = checkRedisUrl(opts.redis);
  const concurrency = positive("concurrency", opts.concurrency, 256);
  const lockTimeoutS = positive("lock-timeout", opts.lockTimeout, 3600);
  const exp = openExperiment(opts);
  const { log } = createLogger({ stdout: true });
  const adapter = createAdapter(exp.config, exp.root, log);
  // Paid calls are reported and budgeted through Redis, on a connection of their own.
  const calls = connect(redisUrl, "worker-calls");
  const models = queueModels({ redis: calls, targets: modelTargets(exp.config, process.env), clock: systemClock, log });
  const local = createLocalTasks({ root: exp.root, config: exp.config, adapter, concurrency, log, models });
  const running = await startWorker({
    redisUrl,
    concurrency,
    lockTimeoutS,
    versions: versionsOf(exp.config, exp.root),
    cacheDir: join(exp.paths.workspace, "worker", "agents"),
    local,
    log,
  });
  const onSignal = () => void running.close();
  if (opts.signals ?? true) {
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  }
  try {
    return await running.finished;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await calls.quit().catch(() => {});
  }
}
