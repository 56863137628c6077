// A complete `command` benchmark: the harness runs it through the shell, in the experiment directory,
// with these variables (README "Your own benchmark"):
//   HARNESS_SPLIT         train | test | all (all: only on the list-only call)
//   HARNESS_TASK_IDS      comma-separated ids to run; empty on the list-only call
//   HARNESS_AGENT_FILE    absolute path of agent/agent.ts; empty on the list-only call
//   HARNESS_RESULTS_FILE  write {"results": {"<id>": reward | null}} there (null: could not run)
//   HARNESS_TRACES_DIR    train only: write <dir>/<task_id>/… for the coding agent to read; unset for test
//   HARNESS_LIST_ONLY     "1" on the list-only call (answer with every id, values null), else "0"
// It needs tsx to import the TypeScript agent (`node --import tsx`): run it where tsx is installed.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const env = process.env;
const tasks = JSON.parse(readFileSync(new URL("./tasks.json", import.meta.url), "utf8"));
const results = {};

if (env.HARNESS_LIST_ONLY === "1") {
  for (const task of tasks) results[task.id] = null;
} else {
  const wanted = new Set((env.HARNESS_TASK_IDS ?? "").split(",").filter(Boolean));
  const agent = await import(pathToFileURL(env.HARNESS_AGENT_FILE).href);
  for (const task of tasks.filter((t) => wanted.has(t.id))) {
    let answer = null;
    let error = null;
    try {
      answer = agent.classify(task.text);
    } catch (e) {
      error = String(e?.stack ?? e);
    }
    // A crash is the agent's fault (reward 0); null is only for what the agent cannot help.
    results[task.id] = answer === task.label ? 1 : 0;
    if (env.HARNESS_TRACES_DIR) {
      const dir = join(env.HARNESS_TRACES_DIR, task.id.replace(/[^A-Za-z0-9._-]/g, "_"));
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, "trace.json"),
        JSON.stringify({ input: task.text, answer, expected: task.label, error }, null, 2),
      );
    }
  }
}
writeFileSync(env.HARNESS_RESULTS_FILE, JSON.stringify({ results }));
