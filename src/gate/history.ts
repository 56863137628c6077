import type { Split } from "../domain.ts";
import type { GateRecordStore } from "../journal/stores.ts";

/**
 * The evidence rule of the incumbent's history: every journaled result of `agentHash` not counted yet joins
 * it once (however often the runner reused it) as s = reward, f = 1 − reward; an infrastructure error is no
 * evidence. `splitOf` maps a task to its gate split; null leaves it out. Returns how many results joined.
 */
export function foldIntoHistory(
  records: Pick<GateRecordStore, "transaction" | "unfoldedResults" | "markFolded" | "addToHistory">,
  agentHash: string,
  splitOf: (taskId: string) => Split | null,
): number {
  return records.transaction(() => {
    let added = 0;
    for (const r of records.unfoldedResults(agentHash)) {
      records.markFolded(agentHash, r);
      const split = splitOf(r.taskId);
      if (r.reward === null || split === null) continue;
      records.addToHistory(split, r.taskId, r.reward, 1 - r.reward);
      added += 1;
    }
    return added;
  });
}
