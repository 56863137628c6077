/** `auto-harness worker --redis <url>`: runs the queue's tasks on this machine until stopped. */
import { join } from "node:path";
import { commandProblem } from "../benchmark/adapters/command.ts";
import { createAdapter } from "../benchmark/adapters/index.ts";
import { modelTargets } from "../benchmark/models.ts";
import { systemClock } from "../clock.ts";
import { createLocalTasks } from "../distributed/local-tasks.ts";
import { queueModels } from "../distributed/models.ts";
import { checkRedisUrl, connect, probeRedis, redisWhere } from "../distributed/queue.ts";
import { versionsOf } from "../distributed/versions.ts";
import { startWorker } from "../distributed/worker.ts";
import { EXIT_RESUMABLE, UserError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { type GlobalOptions, openExperiment } from "./experiment.ts";
import { REDIS_CONNECT_TIMEOUT_MS } from "./preflight.ts";
import { backoffUnlessStopped, STOP_SIGNALS, underPm2 } from "./run-start.ts";

export interface WorkerCommandOptions extends GlobalOptions {
  redis: string;
  concurrency: string | number;
  lockTimeout: string | number;
  /** Install SIGINT/SIGTERM/SIGHUP handlers (the CLI does; in-process tests don't). */
  signals?: boolean;
  env?: NodeJS.ProcessEnv;
}

const UNREACHABLE_RETRY_MS = 10_000;

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
  // Refused within a connect timeout, not waited on for ever: a wrong URL, a password, something not Redis.
  const away = await probeRedis(redisUrl, REDIS_CONNECT_TIMEOUT_MS);
  if (away) {
    const line = `--redis ${redisWhere(redisUrl)}: ${away.why}; pass the daemon's redis_url and check that redis-server runs there`;
    // Under pm2 after a reboot Redis may simply not be up yet: exit 75 (restarted), after a pause, not 2 (left).
    if (away.unreachable && underPm2(opts.env ?? process.env)) {
      process.stderr.write(`auto-harness: ${line}; retrying in ${UNREACHABLE_RETRY_MS / 1000}s\n`);
      await backoffUnlessStopped(systemClock, UNREACHABLE_RETRY_MS);
      return EXIT_RESUMABLE;
    }
    throw new UserError("USAGE", line);
  }
  const commandTrouble =
    exp.config.benchmark === "command" && exp.config.command ? commandProblem(exp.config.command.run, exp.root) : null;
  if (commandTrouble) throw new UserError("CONFIG_INVALID", commandTrouble);
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
  if (opts.signals ?? true) for (const s of STOP_SIGNALS) process.once(s, onSignal);
  try {
    return await running.finished;
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
    await calls.quit().catch(() => {});
  }
}
