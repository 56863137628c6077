/**
 * The stochastic benchmark: tasks with known pass probabilities, for testing gate rules end to end.
 * Each task belongs to a family with a base pass rate; an agent that answers with a family in `skills`
 * passes that family's tasks 95% of the time, one with it in `breaks` 5%. The noise is a hash of the
 * agent's `variant`, the task and the trial, so a run is reproducible and a re-run (another trial) is not
 * a copy of the first.
 */
import { createHash } from "node:crypto";

interface StochasticTask {
  id: string;
  family: string;
  p: number;
}

interface Answer {
  skills?: string[];
  breaks?: string[];
  variant?: string;
}

/**
 * `STOCHASTIC_SHIFT` (e.g. 0.3) lowers every rate by that much while it is set: a bad hour of a degraded
 * provider, for testing a baseline measured in one.
 */
export function passRate(task: StochasticTask, answer: Answer | null): number {
  const shift = Number(process.env.STOCHASTIC_SHIFT ?? 0) || 0;
  const p = answer?.breaks?.includes(task.family) ? 0.05 : answer?.skills?.includes(task.family) ? 0.95 : task.p;
  return Math.max(0, p - shift);
}

/** Uniform draws in [0, 1) from the answer's variant, the task and the trial: reproducible, new per trial. */
export function draws(task: StochasticTask, result: { answer: unknown; trial?: number }): number[] {
  const answer = (result.answer ?? null) as Answer | null;
  const seed = createHash("sha256")
    .update(`${answer?.variant ?? ""}\0${task.id}\0${result.trial ?? 0}`)
    .digest();
  return [0, 4, 8, 12].map((at) => seed.readUInt32BE(at) / 2 ** 32);
}

export default function score(task: StochasticTask, result: { answer: unknown; trial?: number }) {
  return draws(task, result)[0]! < passRate(task, (result.answer ?? null) as Answer | null) ? 1 : 0;
}
