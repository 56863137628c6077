/**
 * Everything a user gives the harness is checked before anything is written: the experiment directory and
 * workspace can be written, the tasks parse (valid JSONL, unique ids, at least one), the scorer loads and
 * scores one task, the benchmark command runs, and the agent loads in its sandbox. The first problem is one
 * line naming the file and the fix (exit 2); nothing was written, nothing committed.
 */
import { accessSync, constants, existsSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { commandProblem, ProgramNotFound } from "../benchmark/adapters/command.ts";
import { createAdapter } from "../benchmark/adapters/index.ts";
import { type Adapter, rewardOf, type TaskSpec } from "../benchmark/adapters/types.ts";
import { checkAgentStatic } from "../benchmark/sealed/load-check.ts";
import type { Config } from "../config/schema.ts";
import { errorMessage, HarnessError, UserError } from "../errors.ts";
import { agentCheck } from "../steps/steps.ts";
import type { Paths } from "../workspace/paths.ts";

export interface InputCheckTarget {
  root: string;
  config: Config;
  paths: Paths;
}

/** The command the user typed, so the fix can say "then run it again". */
export type CheckedCommand = "prepare" | "run" | "init";

/** The nearest directory that exists at or above `dir`: where a new one would be made. */
export function nearestExisting(dir: string): string {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

/** Refuses a directory (or file) the harness must write but cannot: read-only, not ours, not a directory. */
export function checkWritable(targets: string[], command: CheckedCommand): void {
  for (const target of targets) {
    if (!existsSync(target)) continue;
    try {
      // access(2) answers EROFS for a read-only mount even to root, and writes nothing.
      accessSync(target, constants.W_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "error";
      throw new UserError(
        "RUN_STATE",
        `${target} is not writable (${code}); make it writable (or pick another --dir), then run \`auto-harness ${command}\` again; nothing was written`,
      );
    }
  }
}

/** A multi-line error (a stderr tail, a compiler's report) as one line. */
const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim();

const rel = (root: string, file: string) => relative(root, file) || file;

/** The task ids the benchmark lists: bad JSONL and duplicate ids arrive as one line from the adapter. */
async function checkTasks(t: InputCheckTarget, adapter: Adapter): Promise<string[]> {
  let ids: string[];
  try {
    ids = await adapter.listTasks();
  } catch (error) {
    if (error instanceof ProgramNotFound) {
      // The install line first: the rest (the command, the shell's own words) is what it is about.
      const program = error.program ? `\`${error.program}\`` : "a program it runs";
      throw new UserError(
        "CONFIG_INVALID",
        `command.run: ${program} is not installed (the benchmark command \`${t.config.command?.run}\` exits 127, not found on PATH); install it, or fix command.run in experiment_config.yaml; ${errorMessage(error)}`,
      );
    }
    if (t.config.benchmark === "command") {
      throw new UserError(
        "CONFIG_INVALID",
        // The line names the command and the fix; the command's own stderr tail follows it as it said it.
        `the benchmark command \`${t.config.command?.run}\` failed when asked for its tasks (HARNESS_SPLIT=all, HARNESS_LIST_ONLY=1); fix it in experiment_config.yaml (command.run): ${errorMessage(error)}`,
      );
    }
    if (error instanceof HarnessError) throw error;
    throw new UserError("CONFIG_INVALID", `the tasks could not be read: ${errorMessage(error)}`);
  }
  if (ids.length === 0) throw new UserError("CONFIG_INVALID", "the benchmark lists no tasks; add at least one");
  return ids;
}

/** A `local` scorer: it loads, and scores the first task's empty answer without throwing. */
async function checkScorer(t: InputCheckTarget, adapter: Adapter, firstTask: string): Promise<void> {
  if (adapter.kind !== "agent" || t.config.benchmark !== "local" || !t.config.local) return;
  const abs = resolve(t.root, t.config.local.scorer);
  const file = rel(t.root, abs);
  if (!existsSync(abs)) {
    throw new UserError(
      "CONFIG_INVALID",
      `the scorer ${file} does not exist; write it, or fix local.scorer in experiment_config.yaml`,
    );
  }
  let spec: TaskSpec;
  try {
    spec = (await adapter.loadTasks([firstTask])).get(firstTask)!;
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(
      "CONFIG_INVALID",
      `the scorer ${file} does not load: ${oneLine(errorMessage(error).split("\n")[0] ?? "")}`,
    );
  }
  try {
    rewardOf(await adapter.score(spec, { answer: "", state: null, trial: 0 }));
  } catch (error) {
    throw new UserError(
      "CONFIG_INVALID",
      `the scorer ${file} threw on task ${JSON.stringify(firstTask)} with an empty answer: ${errorMessage(error).split("\n")[0]}; a scorer returns a reward for any answer (0 for a wrong one)`,
    );
  }
}

/** The agent (or the template prepare would copy) loads in its sandbox, as the gate's load check runs it. */
async function checkAgentLoads(t: InputCheckTarget, agentFile: string): Promise<void> {
  if (!existsSync(agentFile)) return;
  // A command benchmark runs the agent itself, through its own interface: there it is only compiled.
  const result =
    t.config.benchmark === "command"
      ? await checkAgentStatic(agentFile, { root: t.root })
      : await agentCheck(t.root, t.config)(agentFile);
  if (!result.ok) {
    throw new UserError(
      "AGENT_LOAD_FAILED",
      `${rel(t.root, agentFile)} does not load: ${oneLine(result.message.split("\n").slice(0, 3).join(" "))}; fix it, then run the command again`,
    );
  }
}

/** Every check, cheapest first; the first problem ends the command before it writes anything. */
export async function checkInputs(
  t: InputCheckTarget,
  o: { command: CheckedCommand; agentFile: string | null },
): Promise<void> {
  checkWritable([t.root, t.paths.workspace, t.paths.journal, t.paths.results], o.command);
  // A command's list call can run its whole benchmark (a registry dataset without a task list): asked before
  // prepare only, where the split is made; a run takes the pinned split.
  if (t.config.benchmark !== "command" || o.command === "prepare") {
    // A program that is not there, said as what to install before the command's own failure could bury it.
    const missing = t.config.command ? commandProblem(t.config.command.run, t.root) : null;
    if (t.config.benchmark === "command" && missing) throw new UserError("CONFIG_INVALID", missing);
    const adapter = createAdapter(t.config, t.root);
    const ids = await checkTasks(t, adapter);
    await checkScorer(t, adapter, ids[0]!);
  }
  if (o.agentFile) await checkAgentLoads(t, o.agentFile);
}
