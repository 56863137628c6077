/**
 * Scores one task: the agent's answer must name the expected city. `task` is the whole line of
 * tasks.jsonl (grading fields included); `result.answer` is what the agent's run() returned.
 * Return a reward in 0..1, or { reward, detail } to explain it in the train results.
 */
export default function score(task: { expected: string }, result: { answer: unknown }) {
  const answer = typeof result.answer === "string" ? result.answer : JSON.stringify(result.answer ?? "");
  const ok = answer.toLowerCase().includes(task.expected.toLowerCase());
  return { reward: ok ? 1 : 0, detail: ok ? "named the city" : `expected ${task.expected}` };
}
