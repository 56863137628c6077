// The scorer of a `local` benchmark: the default export gets the task's whole JSONL line (grading fields
// included, which the agent never sees) and `result = { answer, state }`: `answer` is what the agent's
// `run` returned, `state` the final state of the task's env (null here: this benchmark has no env).
// It returns a reward in 0..1, or `{ reward, detail }`, the detail shown in train traces.
interface Task {
  id: string;
  input: string;
  expected: string;
}

export default function score(task: Task, result: { answer: unknown; state: unknown }) {
  const answer = typeof result.answer === "string" ? result.answer : "";
  const hit = answer.toLowerCase().includes(task.expected.toLowerCase());
  // A long answer that happens to contain the name is half right: the task asks for the capital only.
  if (hit && answer.length > 60) return { reward: 0.5, detail: "right city, but not a short answer" };
  return hit ? 1 : { reward: 0, detail: `expected ${task.expected}` };
}
