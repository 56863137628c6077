/** Scores one task in the harness process, from the agent's final answer and the database it left. */
import { readFileSync } from "node:fs";
import { type Db, type ExampleTask, grade } from "./domain.ts";

const initial = JSON.parse(readFileSync(new URL("./db.json", import.meta.url), "utf8")) as Db;

export default function score(task: ExampleTask, result: { answer: unknown; state: unknown }) {
  if (!result.state) return { reward: 0, detail: "no database state came back" };
  return grade(initial, result.state as Db, result.answer, task.expect);
}
