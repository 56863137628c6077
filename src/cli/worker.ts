/** `auto-harness worker --redis <url>`: runs the queue's tasks on this machine until stopped. */
import { join } from "node:path";
import { createAdapter } from "../benchmark/adapters/index.ts";
import { createLocalTasks } from "../distributed/local-tasks.ts";
import { checkRedisUrl } from "../distributed/queue.ts";
import { versionsOf } from "../distributed/versions.ts";
import { startWorker } from "../distributed/worker.ts";
import { UserError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { type GlobalOptions, openExperiment } from "./experiment.ts";
import { STOP_SIGNALS } from "./run-start.ts";

export interface WorkerCommandOptions extends GlobalOptions {
  redis: string;
  concurrency: string | number;
  lockTimeout: string | number;
  /** Install SIGINT/SIGTERM/SIGHUP handlers (the CLI does; in-process tests don't). */
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
  const local = createLocalTasks({ root: exp.root, config: exp.config, adapter, concurrency, log });
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
  if (opts.signals ?? true) for (const s of STOP_SIGNALS) process.once(s, onSignal);
  try {
    return await running.finished;
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}
