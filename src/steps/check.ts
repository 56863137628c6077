import type { Clock } from "../clock.ts";
import type { Observation, StepInput } from "../contracts.ts";
import type { Stores } from "../journal/stores.ts";

/** The stop check's view of the world: the injected clock, the ledger, and the operator's stop request. */
export function createCheck(journal: Pick<Stores, "runs" | "ledger">, clock: Clock) {
  return async (input: StepInput): Promise<Observation> => {
    const run = journal.runs.getRun(input.runId);
    return {
      now: clock.now(),
      spentUsd: journal.ledger.spend(input.runId).totalUsd,
      stopRequested: run?.stopRequested ?? false,
    };
  };
}
