/** The built-in example benchmark (benchmarks/example): a local adapter with the shop's database as env. */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createLocalAdapter } from "./local.ts";
import type { AgentAdapter } from "./types.ts";

export const EXAMPLE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "benchmarks", "example");

export function createExampleAdapter(dir = EXAMPLE_DIR): AgentAdapter {
  return createLocalAdapter({
    name: "example",
    tasksFile: join(dir, "tasks.jsonl"),
    scorerFile: join(dir, "scorer.ts"),
    envModule: join(dir, "env.ts"),
  });
}
