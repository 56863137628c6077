/** Loaded in the agent's child process: each task gets its own fresh copy of the database. */
import { readFileSync } from "node:fs";
import { type Db, executeTool, TOOL_NAMES } from "./domain.ts";

const initial = JSON.parse(readFileSync(new URL("./db.json", import.meta.url), "utf8")) as Db;

export default function createEnv() {
  const db = structuredClone(initial);
  return {
    env: {
      tools: [...TOOL_NAMES],
      execute: async (tool: string, input: Record<string, unknown>) => executeTool(db, tool, input ?? {}),
    },
    state: () => db,
  };
}
