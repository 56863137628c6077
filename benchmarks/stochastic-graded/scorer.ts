/**
 * The stochastic benchmark with partial credit: the same tasks and agent (../stochastic), each run scored
 * 0, 0.5 or 1 as the mean of two independent checks that each pass at the task's rate. A task's mean
 * reward is its rate, as in the binary one, and a run is half as noisy.
 */
import { draws, passRate } from "../stochastic/scorer.ts";

export default function score(
  task: { id: string; family: string; p: number },
  result: { answer: unknown; trial?: number },
) {
  const p = passRate(task, (result.answer ?? null) as Parameters<typeof passRate>[1]);
  const [a, b] = draws(task, result);
  return ((a! < p ? 1 : 0) + (b! < p ? 1 : 0)) / 2;
}
