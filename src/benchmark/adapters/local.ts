/**
 * The `local` adapter: the operator's own tasks (JSONL, one object with an `id` per line) and a
 * TypeScript scorer module whose default export is `(task, result) => number | { reward, detail }`.
 * The agent sees `{ id, input }` of each line (`input` defaults to null); the scorer sees the whole line.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { FileDamagedError, UserError } from "../../errors.ts";
import { importTsModule } from "../ts-module.ts";
import type { AgentAdapter, Score, TaskRunResult, TaskSpec } from "./types.ts";

export type TaskRecord = Record<string, unknown> & { id: string };

/** Parses a tasks file; a malformed line is reported with its line number. */
export function parseTasksJsonl(text: string, file: string): TaskRecord[] {
  const tasks: TaskRecord[] = [];
  const seen = new Set<string>();
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new FileDamagedError(file, i + 1, `not valid JSON: ${(error as Error).message}`);
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      throw new FileDamagedError(file, i + 1, "each line must be a JSON object");
    }
    const id = (value as Record<string, unknown>).id;
    if (typeof id !== "string" || id === "") throw new FileDamagedError(file, i + 1, "missing a string `id`");
    if (seen.has(id)) throw new FileDamagedError(file, i + 1, `duplicate task id ${JSON.stringify(id)}`);
    seen.add(id);
    tasks.push(value as TaskRecord);
  });
  return tasks;
}

type Scorer = (task: unknown, result: TaskRunResult) => Score | Promise<Score>;

export interface LocalAdapterOptions {
  name?: string;
  tasksFile: string;
  scorerFile: string;
  /** Module loaded in the agent's child process whose default export builds a task's env. */
  envModule?: string | null;
}

export function createLocalAdapter(opts: LocalAdapterOptions): AgentAdapter {
  const tasksFile = resolve(opts.tasksFile);
  const scorerFile = resolve(opts.scorerFile);
  let tasks: Map<string, TaskRecord> | null = null;
  let scorer: Promise<Scorer> | null = null;

  const load = (): Map<string, TaskRecord> => {
    if (tasks) return tasks;
    let text: string;
    try {
      text = readFileSync(tasksFile, "utf8");
    } catch (error) {
      throw new UserError("CONFIG_INVALID", `cannot read the tasks file ${tasksFile}: ${(error as Error).message}`);
    }
    tasks = new Map(parseTasksJsonl(text, tasksFile).map((t) => [t.id, t]));
    return tasks;
  };

  const loadScorer = (): Promise<Scorer> => {
    scorer ??= importTsModule(scorerFile).then((mod) => {
      // A CommonJS-compiled scorer carries its default export one level down.
      let fn = mod.default as unknown;
      if (fn && typeof fn === "object" && "default" in fn) fn = (fn as { default: unknown }).default;
      if (typeof fn !== "function") {
        throw new UserError(
          "CONFIG_INVALID",
          `${scorerFile}: the default export must be a function (task, result) => number`,
        );
      }
      return fn as Scorer;
    });
    return scorer;
  };

  return {
    kind: "agent",
    name: opts.name ?? "local",
    envModule: opts.envModule ? resolve(opts.envModule) : null,
    listTasks: async () => [...load().keys()],
    loadTasks: async (ids) => {
      const all = load();
      const out = new Map<string, TaskSpec>();
      for (const id of ids) {
        const record = all.get(id);
        if (!record) throw new UserError("USAGE", `unknown task id ${JSON.stringify(id)} in ${tasksFile}`);
        out.set(id, { id, agentTask: { id, input: record.input ?? null }, envData: null, record });
      }
      // Fail before any task runs, not after the first one.
      await loadScorer();
      return out;
    },
    score: async (task, result) => (await loadScorer())(task.record, result),
  };
}
