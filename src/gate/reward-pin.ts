/**
 * The benchmark's reward model, pinned in the journal: `prepare` fits it from the baseline (the train split run
 * twice, so the within-task noise can be measured), `rebaseline` fits it again, and each paired round leaves
 * the model the next one starts from (its prior moved by the drift check). An experiment prepared before the
 * pin fits it at its first paired gate from whatever runs of the incumbent the journal holds.
 */
import type { Stores } from "../journal/stores.ts";
import { fitRewardModel, type RewardModel } from "./rules/reward-model.ts";

const PIN = "reward-model";

export function pinnedRewardModel(pins: Pick<Stores["pins"], "pinned">): RewardModel | null {
  const pin = pins.pinned(PIN);
  return pin ? (JSON.parse(pin.content) as RewardModel) : null;
}

export function pinRewardModel(pins: Pick<Stores["pins"], "pin">, model: RewardModel): void {
  pins.pin(PIN, JSON.stringify(model));
}

/** The model of an agent's journaled runs (every split, every trial; infrastructure errors left out). */
export function fitFromJournal(
  taskResults: Pick<Stores["taskResults"], "taskResults">,
  agentHash: string,
): RewardModel {
  const runs: Record<string, (number | null)[]> = {};
  for (const split of ["train", "test"] as const)
    for (const r of taskResults.taskResults(agentHash, split)) runs[r.taskId] = [...(runs[r.taskId] ?? []), r.reward];
  return fitRewardModel(runs);
}
