/**
 * The coding agent's tools: declarations sent to the model and their sandboxed implementations.
 * Every input is validated with zod; anything refused comes back as an error result that says what
 * is allowed, so a hostile or confused model gets a lesson, never a crash.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { firstCheckError } from "../benchmark/check-message.ts";
import { agentText, readTraceResult } from "../benchmark/traces.ts";
import type { BenchmarkRunner } from "../benchmark/types.ts";
import { AbortedError, errorMessage } from "../errors.ts";
import type { Tool } from "../llm/client.ts";
import { passes } from "../scoring.ts";
import { readTrainResults, writeFileAtomic } from "../workspace/files.ts";
import { paths } from "../workspace/paths.ts";
import { regexProblem, type SearchFile, searchWithDeadline } from "./regex-search.ts";
import { allowedReadsText, checkRead, checkWrite, normalizeRelPath, type TrainIds } from "./sandbox.ts";

export const EDITOR_TOOL = "str_replace_based_edit_tool";
/** A regex search that has not finished by then is stopped: far above what a sane pattern needs over a run's traces. */
export const REGEX_TIMEOUT_MS = 5_000;
export type Phase = "analyze" | "edit";

export type CheckAgent = (agentFile: string) => Promise<{ ok: true } | { ok: false; message: string }>;

export interface ToolContext {
  root: string;
  /** The agent file relative to the root (config `agent_file`). */
  agentFile: string;
  phase: Phase;
  runId: string;
  iteration: number;
  signal: AbortSignal;
  runner: BenchmarkRunner | undefined;
  checkAgent: CheckAgent;
  taskRunBudget: number;
  maxResultChars: number;
  /** The train task ids of the split the journal pins: the only traces and tasks the model may touch. */
  trainIds: TrainIds;
  /** Hard limit of one regex search_traces call (default REGEX_TIMEOUT_MS). */
  regexTimeoutMs?: number;
  /** Mutable per phase run: task runs spent so far. */
  state: { taskRunsUsed: number };
}

export interface ToolOutcome {
  content: string;
  isError: boolean;
  /** Set when a valid `finish` was called: the loop ends with it. */
  finish?: unknown;
}

// ---- input schemas

const pathField = z.string().min(1);
const viewInput = z.strictObject({
  command: z.literal("view"),
  path: pathField,
  view_range: z.tuple([z.int().min(1), z.int().min(-1)]).optional(),
});
const strReplaceInput = z.strictObject({
  command: z.literal("str_replace"),
  path: pathField,
  old_str: z.string().min(1),
  new_str: z.string().default(""),
});
const createInput = z.strictObject({ command: z.literal("create"), path: pathField, file_text: z.string() });
const insertInput = z
  .strictObject({
    command: z.literal("insert"),
    path: pathField,
    insert_line: z.int().min(0),
    insert_text: z.string().optional(),
    new_str: z.string().optional(),
  })
  .refine((v) => v.insert_text !== undefined || v.new_str !== undefined, {
    message: "insert needs insert_text (or new_str)",
  });
const EDITOR_COMMANDS = ["view", "str_replace", "create", "insert"] as const;

const searchInput = z.strictObject({
  pattern: z.string().min(1).max(500).describe("Substring, or a JavaScript regular expression when regex is true."),
  regex: z.boolean().default(false),
  task_id: z.string().min(1).optional().describe("Search only this train task's traces."),
  max_matches: z.int().min(1).max(200).default(50),
});
const runTasksInput = z.strictObject({
  task_ids: z.array(z.string().min(1)).min(1).max(50).describe("Train task ids to run against the current agent."),
});
const emptyInput = z.strictObject({});
export const editFinishInput = z.strictObject({
  hypothesis: z.string().min(1).describe("The failure hypothesis this change tests."),
  change_summary: z.string().min(1).describe("One sentence: what changed in agent/agent.ts."),
  commit_message: z.string().min(1).describe("Commit message for the change (first line ≤ 72 chars)."),
  pattern: z.string().min(1).describe("The failure pattern addressed."),
  needs_from_human: z.string().describe('What a human should provide or decide, or "none".'),
});
export const analyzeFinishInput = z.strictObject({
  patterns: z
    .array(z.string().min(1))
    .min(1)
    .max(10)
    .describe("Short names of the failure patterns, most costly first."),
  notes: z.string().max(4000).optional().describe("Evidence and ideas for the edit phase (task ids, trace lines)."),
});

function declare(name: string, description: string, schema: z.ZodType): Tool {
  const { $schema: _drop, ...inputSchema } = z.toJSONSchema(schema, { io: "input" }) as Record<string, unknown>;
  return { name, description, input_schema: inputSchema as Tool & { type: "object" } } as Tool;
}

/** Tool declarations for a phase; the last one carries the cache breakpoint so the tool list is cached. */
/** The tools of a phase; their descriptions name the agent file (config `agent_file`). */
export function toolDeclarations(phase: Phase, agentFile = "agent/agent.ts"): Tool[] {
  return declarationsOf(phase).map((tool) =>
    agentFile === "agent/agent.ts" || !("description" in tool) || typeof tool.description !== "string"
      ? tool
      : {
          ...tool,
          description: tool.description
            .replaceAll("agent/agent.ts", agentFile)
            .replace("Type-check and load", agentFile.endsWith(".py") ? "Compile and import" : "Type-check and load"),
        },
  );
}

function declarationsOf(phase: Phase): Tool[] {
  const tools: Tool[] = [
    { type: "text_editor_20250728", name: EDITOR_TOOL },
    declare(
      "list_failing_tasks",
      "List train tasks whose reward is below 0.5 (or that had an infrastructure error), with the error summary from workspace/traces/latest/<id>/result.json.",
      emptyInput,
    ),
    declare(
      "search_traces",
      "Search the train traces in workspace/traces/latest for a substring or regex; returns file:line matches (bounded).",
      searchInput,
    ),
  ];
  if (phase === "edit") {
    tools.push(
      declare(
        "run_train_tasks",
        "Run chosen train tasks against the current agent/agent.ts to test a hypothesis. Budgeted per iteration; refreshes their traces in workspace/traces/latest.",
        runTasksInput,
      ),
      declare("check_agent", "Type-check and load agent/agent.ts; returns ok or the errors.", emptyInput),
      declare(
        "finish",
        "End the edit phase with a structured summary. Call it once, after the change is made (or to give up with no change).",
        editFinishInput,
      ),
    );
  } else {
    tools.push(
      declare(
        "finish",
        "End the analysis with the failure patterns found and notes for the edit phase.",
        analyzeFinishInput,
      ),
    );
  }
  const last = tools.at(-1) as Tool & { cache_control?: unknown };
  last.cache_control = { type: "ephemeral" };
  return tools;
}

// ---- helpers

const fail = (content: string): ToolOutcome => ({ content, isError: true });
const ok = (content: string): ToolOutcome => ({ content, isError: false });

function zodProblem(tool: string, error: z.ZodError): string {
  const problems = error.issues.map((i) => `${i.path.map(String).join(".") || "(input)"}: ${i.message}`);
  return `invalid input for ${tool}: ${problems.join("; ")}`;
}

/** Cuts a result so one tool call cannot flood the context; the note says how to get the rest. */
export function cut(text: string, max: number, how: string): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}\n[truncated: showed ${max} of ${text.length} characters; ${how}]`;
}

function numbered(lines: string[], from: number): string {
  return lines.map((l, i) => `${String(from + i).padStart(6)}\t${l}`).join("\n");
}

// ---- the text editor

function view(ctx: ToolContext, input: z.infer<typeof viewInput>): ToolOutcome {
  const check = checkRead(ctx.root, input.path, ctx.trainIds, ctx.agentFile);
  if (!check.ok) return fail(check.message);
  if (!existsSync(check.abs)) return fail(`${check.rel || "."} does not exist (${allowedReadsText(ctx.agentFile)})`);
  if (statSync(check.abs).isDirectory()) return ok(listDir(ctx, check.rel));
  const text = readFileSync(check.abs, "utf8");
  const lines = text.split("\n");
  const [start, endRaw] = input.view_range ?? [1, -1];
  const end = endRaw === -1 ? lines.length : Math.min(endRaw, lines.length);
  if (start > lines.length || end < start) {
    return fail(`view_range [${start}, ${endRaw}] is outside the file's ${lines.length} lines`);
  }
  // Whole lines up to the limit, so the note can say exactly where to resume.
  const out: string[] = [];
  let size = 0;
  let line = start;
  for (; line <= end; line++) {
    const row = `${String(line).padStart(6)}\t${lines[line - 1] ?? ""}`;
    if (size + row.length + 1 > ctx.maxResultChars) break;
    out.push(row);
    size += row.length + 1;
  }
  if (line > end) return ok(out.join("\n"));
  if (out.length === 0) {
    const row = lines[line - 1] ?? "";
    return ok(
      `${numbered([row.slice(0, ctx.maxResultChars)], line)}\n[truncated: line ${line} has ${row.length} characters; showed the first ${ctx.maxResultChars}. Use search_traces to find specific content in it, or view_range [${line + 1}, -1] for the lines after it]`,
    );
  }
  return ok(
    `${out.join("\n")}\n[truncated: showed lines ${start}-${line - 1} of ${lines.length}; call view with view_range [${line}, -1] for the rest]`,
  );
}

function listDir(ctx: ToolContext, rel: string): string {
  const ids = ctx.trainIds;
  const abs = rel === "" ? ctx.root : join(ctx.root, rel);
  const entries = readdirSync(abs, { withFileTypes: true })
    .map((e) => ({ e, child: rel === "" ? e.name : `${rel}/${e.name}` }))
    .filter(({ child }) => checkRead(ctx.root, child, ids, ctx.agentFile).ok)
    .map(({ e, child }) => (e.isDirectory() ? `${child}/` : child))
    .sort();
  const shown = entries.slice(0, 500);
  const more = entries.length > shown.length ? `\n[${entries.length - shown.length} more entries not shown]` : "";
  return cut(
    `${rel || "."}/ (${entries.length} entries)\n${shown.join("\n")}${more}`,
    ctx.maxResultChars,
    "view a subfolder instead",
  );
}

function readAgent(abs: string): string {
  return existsSync(abs) ? readFileSync(abs, "utf8") : "";
}

function write(ctx: ToolContext, command: string, pathInput: string, change: (before: string) => ToolOutcome | string) {
  if (ctx.phase !== "edit")
    return fail(`${command} is not available in the analyze phase: it is read-only; edits happen in the edit phase`);
  const check = checkWrite(ctx.root, pathInput, ctx.agentFile);
  if (!check.ok) return fail(check.message);
  const before = readAgent(check.abs);
  const after = change(before);
  if (typeof after !== "string") return after;
  writeFileAtomic(check.abs, after);
  return ok(`${ctx.agentFile} updated (${command}); it now has ${after.split("\n").length} lines`);
}

function editor(ctx: ToolContext, raw: unknown): ToolOutcome {
  const command = (raw as { command?: unknown } | null)?.command;
  if (typeof command !== "string" || !(EDITOR_COMMANDS as readonly string[]).includes(command)) {
    return fail(
      `unknown or missing command ${JSON.stringify(command)}; allowed commands: ${EDITOR_COMMANDS.join(", ")}`,
    );
  }
  const schema = { view: viewInput, str_replace: strReplaceInput, create: createInput, insert: insertInput }[
    command as (typeof EDITOR_COMMANDS)[number]
  ];
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return fail(zodProblem(`${EDITOR_TOOL} ${command}`, parsed.error));
  const input = parsed.data;
  switch (input.command) {
    case "view":
      return view(ctx, input);
    case "create":
      return write(ctx, "create", input.path, () => input.file_text);
    case "str_replace":
      return write(ctx, "str_replace", input.path, (before) => {
        const count = before.split(input.old_str).length - 1;
        if (count === 0)
          return fail(`old_str was not found in ${ctx.agentFile}; view the file and copy the text exactly`);
        if (count > 1)
          return fail(`old_str occurs ${count} times in ${ctx.agentFile}; include more context so it is unique`);
        return before.replace(input.old_str, () => input.new_str);
      });
    case "insert":
      return write(ctx, "insert", input.path, (before) => {
        const lines = before.split("\n");
        if (input.insert_line > lines.length) {
          return fail(`insert_line ${input.insert_line} is past the end of the file (${lines.length} lines)`);
        }
        const text = input.insert_text ?? input.new_str ?? "";
        lines.splice(input.insert_line, 0, ...text.split("\n"));
        return lines.join("\n");
      });
  }
}

// ---- the harness's own tools

function errorSummary(root: string, taskId: string, ids: TrainIds): string {
  const check = checkRead(root, `workspace/traces/latest/${taskId}/result.json`, ids);
  if (!check.ok) return "(no result.json)";
  const read = readTraceResult(paths(root).tracesLatest, taskId);
  if (!read.found)
    return read.why === "missing" ? "(no result.json)" : "(result.json written by the benchmark: view it)";
  return read.result.error === null ? "(no error recorded)" : agentText(read.result.error, 300);
}

function listFailing(ctx: ToolContext): ToolOutcome {
  const results = readTrainResults(paths(ctx.root).trainResults);
  if (!results) return fail("workspace/train_results.json does not exist yet; nothing has been benchmarked");
  const ids = ctx.trainIds;
  const rows = Object.entries(results.results)
    .filter(([id, reward]) => (ids === null || ids.has(id)) && !passes(reward))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([id, reward]) =>
        `${id}\treward=${reward === null ? "null (infrastructure error)" : reward}\t${errorSummary(ctx.root, id, ids)}`,
    );
  const total = Object.keys(results.results).length;
  return ok(
    cut(
      `${rows.length} of ${total} train tasks fail (reward < 0.5):\n${rows.join("\n")}`,
      ctx.maxResultChars,
      "use search_traces or view workspace/train_results.json with view_range",
    ),
  );
}

function* walkFiles(root: string, dirRel: string): Generator<string> {
  const abs = join(root, dirRel);
  if (!existsSync(abs)) return;
  for (const e of readdirSync(abs, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = `${dirRel}/${e.name}`;
    // Symlinks are skipped outright: search must not follow them anywhere.
    if (lstatSync(join(root, rel)).isSymbolicLink()) continue;
    if (e.isDirectory()) yield* walkFiles(root, rel);
    else if (e.isFile()) yield rel;
  }
}

async function searchTraces(ctx: ToolContext, input: z.infer<typeof searchInput>): Promise<ToolOutcome> {
  if (input.regex) {
    const problem = regexProblem(input.pattern);
    if (problem !== null) return fail(`invalid regular expression: ${problem}`);
  }
  const ids = ctx.trainIds;
  const base = "workspace/traces/latest";
  let taskDirs: string[];
  if (input.task_id !== undefined) {
    const norm = normalizeRelPath(input.task_id);
    if (!norm.ok || norm.rel.includes("/") || (ids !== null && !ids.has(norm.rel))) {
      return fail("task_id must be a train task id (see list_failing_tasks)");
    }
    taskDirs = [`${base}/${norm.rel}`];
  } else {
    const abs = join(ctx.root, base);
    taskDirs = existsSync(abs)
      ? readdirSync(abs)
          .filter((name) => ids === null || ids.has(name))
          .sort()
          .map((name) => `${base}/${name}`)
      : [];
  }
  const files: SearchFile[] = [];
  for (const dir of taskDirs) {
    if (!checkRead(ctx.root, dir, ids, ctx.agentFile).ok) continue;
    for (const file of walkFiles(ctx.root, dir)) {
      if (!checkRead(ctx.root, file, ids, ctx.agentFile).ok) continue;
      files.push({ file, text: readFileSync(join(ctx.root, file), "utf8") });
    }
  }
  let found: { matches: string[]; more: boolean };
  if (input.regex) {
    const result = await searchWithDeadline(input.pattern, files, {
      maxMatches: input.max_matches,
      timeoutMs: ctx.regexTimeoutMs ?? REGEX_TIMEOUT_MS,
    });
    if (!result.ok)
      return fail(result.reason === "invalid" ? `invalid regular expression: ${result.message}` : result.message);
    found = result;
  } else {
    found = substringMatches(input.pattern, files, input.max_matches);
  }
  const { matches, more } = found;
  if (matches.length === 0) return ok(`no matches for ${JSON.stringify(input.pattern)} in train traces`);
  const note = more ? `\n[stopped at ${input.max_matches} matches; narrow the pattern or pass task_id]` : "";
  return ok(cut(`${matches.join("\n")}${note}`, ctx.maxResultChars, "narrow the pattern or lower max_matches"));
}

/** A substring search is linear: it runs here, without a worker. */
function substringMatches(pattern: string, files: SearchFile[], max: number): { matches: string[]; more: boolean } {
  const matches: string[] = [];
  for (const { file, text } of files) {
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] ?? "";
      if (!line.includes(pattern)) continue;
      if (matches.length >= max) return { matches, more: true };
      const shown = line.length > 300 ? `${line.slice(0, 300)}…` : line;
      matches.push(`${file}:${i + 1}: ${shown}`);
    }
  }
  return { matches, more: false };
}

async function runTrainTasks(ctx: ToolContext, input: z.infer<typeof runTasksInput>): Promise<ToolOutcome> {
  if (!ctx.runner) return fail("running tasks is not available in this session");
  const ids = ctx.trainIds;
  if (ids === null)
    return fail("the journal holds no split (run `auto-harness prepare`), so no task is known to be a train task");
  const taskIds = [...new Set(input.task_ids)];
  const notTrain = taskIds.filter((id) => !ids.has(id));
  if (notTrain.length > 0) {
    return fail(`only train tasks may be run; not train tasks: ${notTrain.join(", ")} (see list_failing_tasks)`);
  }
  const left = ctx.taskRunBudget - ctx.state.taskRunsUsed;
  if (taskIds.length > left) {
    return fail(
      `task-run budget: ${left} of ${ctx.taskRunBudget} task runs left this iteration; asked for ${taskIds.length}. Run fewer tasks, or finish`,
    );
  }
  ctx.state.taskRunsUsed += taskIds.length;
  try {
    const summary = await ctx.runner.run({
      split: "train",
      taskIds,
      runId: ctx.runId,
      iteration: ctx.iteration,
      writeTraces: true,
      reuse: true,
      signal: ctx.signal,
    });
    const rows = taskIds.map((id) => `${id}\treward=${summary.results[id] ?? "null (infrastructure error)"}`);
    return ok(
      `${rows.join("\n")}\npassed ${summary.passed}/${summary.total}; their traces in workspace/traces/latest/<id>/ were refreshed. Task runs left this iteration: ${ctx.taskRunBudget - ctx.state.taskRunsUsed}`,
    );
  } catch (e) {
    if (ctx.signal.aborted) throw new AbortedError("task run aborted", e);
    return fail(`the task run failed: ${errorMessage(e).slice(0, 2000)}`);
  }
}

async function checkAgentTool(ctx: ToolContext): Promise<ToolOutcome> {
  const result = await ctx.checkAgent(join(ctx.root, ctx.agentFile));
  if (result.ok) return ok(`${ctx.agentFile} ${ctx.agentFile.endsWith(".py") ? "compiles" : "type-checks"} and loads`);
  return fail(`${ctx.agentFile} does not pass the check:\n${firstCheckError(result.message)}`);
}

/** Carries out one tool call. Never throws for bad input; only an abort escapes. */
export async function runTool(ctx: ToolContext, name: string, input: unknown): Promise<ToolOutcome> {
  const names = toolDeclarations(ctx.phase, ctx.agentFile).map((t) => (t as { name: string }).name);
  const parse = <T>(schema: z.ZodType<T>): { ok: true; data: T } | { ok: false; outcome: ToolOutcome } => {
    const parsed = schema.safeParse(input ?? {});
    return parsed.success
      ? { ok: true, data: parsed.data }
      : { ok: false, outcome: fail(zodProblem(name, parsed.error)) };
  };
  if (!names.includes(name))
    return fail(`unknown tool ${JSON.stringify(name)} in the ${ctx.phase} phase; tools: ${names.join(", ")}`);
  try {
    switch (name) {
      case EDITOR_TOOL:
        return editor(ctx, input);
      case "list_failing_tasks": {
        const p = parse(emptyInput);
        return p.ok ? listFailing(ctx) : p.outcome;
      }
      case "search_traces": {
        const p = parse(searchInput);
        return p.ok ? await searchTraces(ctx, p.data) : p.outcome;
      }
      case "run_train_tasks": {
        const p = parse(runTasksInput);
        return p.ok ? await runTrainTasks(ctx, p.data) : p.outcome;
      }
      case "check_agent": {
        const p = parse(emptyInput);
        return p.ok ? await checkAgentTool(ctx) : p.outcome;
      }
      case "finish": {
        const p = parse<unknown>(ctx.phase === "edit" ? editFinishInput : analyzeFinishInput);
        return p.ok ? { content: "finished", isError: false, finish: p.data } : p.outcome;
      }
    }
  } catch (e) {
    if (e instanceof AbortedError || ctx.signal.aborted)
      throw e instanceof AbortedError ? e : new AbortedError("aborted", e);
    // A file-system surprise (a file vanished, unreadable bytes) is the model's problem to route around, not a crash.
    return fail(`${name} failed: ${errorMessage(e).slice(0, 500)}`);
  }
  return fail(`unknown tool ${JSON.stringify(name)}`);
}
