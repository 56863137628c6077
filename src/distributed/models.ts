/**
 * A worker's models: the same gateway as the daemon's, over the worker's own providers and keys, but its
 * book-keeping goes through Redis. Each call is reserved against the run's budget there (shared by every
 * worker of the run), and reported to the daemon the moment its reply completes, so the spend of a worker
 * SIGKILLed mid-task still reaches the journal; the daemon writes each report once, by its call id.
 */
import type { Redis } from "ioredis";
import { type AgentModels, gatewayModels } from "../benchmark/models.ts";
import type { Clock } from "../clock.ts";
import { errorMessage } from "../errors.ts";
import type { Target } from "../gateway/providers.ts";
import type { Logger } from "../log.ts";
import { ADHOC_RUN } from "./jobs.ts";
import { reportCall, reserveRunBudget, settleRunBudget } from "./queue.ts";

export function queueModels(o: { redis: Redis; targets: readonly Target[]; clock: Clock; log: Logger }): AgentModels {
  return gatewayModels({
    targets: o.targets,
    clock: o.clock,
    budgetFor: ({ runId }) => {
      const run = runId ?? ADHOC_RUN;
      return {
        reserve: (usd) => reserveRunBudget(o.redis, run, usd),
        settle: (reservedUsd, paidUsd) => settleRunBudget(o.redis, run, reservedUsd, paidUsd),
      };
    },
    record: (row) => {
      // Should Redis be away, the call still travels with its task's result.
      reportCall(o.redis, row.runId ?? ADHOC_RUN, row).catch((error: unknown) =>
        o.log.warn(
          { error: errorMessage(error) },
          "could not report a paid call to the daemon; it goes with its result",
        ),
      );
    },
    log: o.log,
  });
}
