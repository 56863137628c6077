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

export function passRate(task: StochasticTask, answer: Answer | null): number {
  if (answer?.breaks?.includes(task.family)) return 0.05;
  if (answer?.skills?.includes(task.family)) return 0.95;
  return task.p;
}

export default function score(task: StochasticTask, result: { answer: unknown; trial?: number }) {
  const answer = (result.answer ?? null) as Answer | null;
  const seed = createHash("sha256")
    .update(`${answer?.variant ?? ""}\0${task.id}\0${result.trial ?? 0}`)
    .digest();
  const u = seed.readUInt32BE(0) / 2 ** 32;
  return u < passRate(task, answer) ? 1 : 0;
}
