/**
 * The incumbent's history after a paired round, pure. The incumbent's own fresh runs always join it (they
 * are the lineage's runs); what the drift check discounted stays discounted. A winner becomes the
 * incumbent: on a task it changed its runs start the history over, elsewhere `lambda` of the old is kept.
 * The reward model's prior moves with the drift check too: a prior fitted in a degraded hour is as stale as
 * the history measured in it.
 */
import { recentered } from "./drift.ts";
import { keptHistory, type Sums } from "./evidence.ts";
import { armStats, sumsOf } from "./paired-stats.ts";
import { type PairedState, viewOf } from "./paired-types.ts";
import type { RewardModel } from "./reward-model.ts";
import type { Decision } from "./types.ts";
import { INCUMBENT } from "./types.ts";

const scaled = (h: Sums | undefined, k: number): Sums => ({ s: (h?.s ?? 0) * k, f: (h?.f ?? 0) * k });
const plus = (a: Sums, b: Sums): Sums => ({ s: a.s + b.s, f: a.f + b.f });

export function nextHistories(
  state: PairedState,
  decision: Decision,
): { test: Record<string, Sums>; train: Record<string, Sums>; model: RewardModel } {
  const { setup } = state;
  const model = recentered(setup.model, state.drift);
  const view = viewOf(state.drift);
  const lambda = setup.params.lambda;
  const inc = state.draws.get(INCUMBENT)!;
  const test: Record<string, Sums> = {};
  for (const id of setup.taskIds)
    test[id] = plus(keptHistory(setup.history.test[id], view), sumsOf(inc.get(id) ?? [], null));
  const train: Record<string, Sums> = {};
  const trainIds = new Set([...Object.keys(setup.history.train), ...Object.keys(setup.train.incumbent)]);
  for (const id of trainIds) {
    const x = setup.train.incumbent[id];
    train[id] = plus(keptHistory(setup.history.train[id], view), sumsOf(x === undefined ? [] : [x], null));
  }
  const winner = decision.winner;
  if (winner === null) return { test, train, model };

  const draws = state.draws.get(winner)!;
  const stats = armStats(
    {
      model,
      params: setup.params,
      taskIds: setup.taskIds,
      history: setup.history.test,
      view,
      bets: state.plan.bets,
      incumbent: inc,
    },
    draws,
  );
  for (const id of setup.taskIds) {
    const mine = sumsOf(draws.get(id) ?? [], 0);
    const c = stats.changes.get(id);
    const changed = c !== undefined && (c.rFix > 0.5 || c.rBreak > 0.5);
    test[id] = changed ? mine : plus(scaled(test[id], lambda), mine);
  }
  const mineTrain = setup.train.candidates[winner] ?? {};
  for (const id of new Set([...trainIds, ...Object.keys(mineTrain)])) {
    const x = mineTrain[id];
    train[id] = plus(scaled(train[id], lambda), sumsOf(x === undefined ? [] : [x], 0));
  }
  return { test, train, model };
}
