/**
 * The coding agent's tools: declarations sent to the model and their sandboxed implementations.
 * Every input is validated with zod; anything refused comes back as an error result that says what
 * is allowed, so a hostile or confused model gets a lesson, never a crash.
 */
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { firstCheckError } from "../benchmark/check-message.ts";
import { agentText, readTraceResult } from "../benchmark/traces.ts";
import { AbortedError, errorMessage } from "../errors.ts";
import type { Tool } from "../llm/client.ts";
import { passes } from "../scoring.ts";
import { readTrainResults } from "../workspace/files.ts";
import { paths } from "../workspace/paths.ts";
import { editor } from "./editor.ts";
import { regexProblem, type SearchFile, searchWithDeadline } from "./regex-search.ts";
import { checkRead, normalizeRelPath, type TrainIds } from "./sandbox.ts";
import {
  cut,
  EDITOR_TOOL,
  fail,
  ok,
  type Phase,
  REGEX_TIMEOUT_MS,
  type ToolContext,
  type ToolOutcome,
  zodProblem,
} from "./tool-context.ts";

export {
  type CheckAgent,
  EDITOR_TOOL,
  type Phase,
  REGEX_TIMEOUT_MS,
  type ToolContext,
  type ToolOutcome,
} from "./tool-context.ts";

// ---- input schemas

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
    if (!checkRead(ctx.root, dir, ids, ctx.editable).ok) continue;
    for (const file of walkFiles(ctx.root, dir)) {
      if (!checkRead(ctx.root, file, ids, ctx.editable).ok) continue;
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
      // A candidate's own copy runs without touching the shared traces its siblings read.
      writeTraces: ctx.agentRoot === ctx.root,
      ...(ctx.agentRoot === ctx.root ? {} : { agentFile: join(ctx.agentRoot, ctx.agentFile) }),
      reuse: true,
      signal: ctx.signal,
    });
    const rows = taskIds.map((id) => `${id}\treward=${summary.results[id] ?? "null (infrastructure error)"}`);
    return ok(
      `${rows.join("\n")}\npassed ${summary.passed}/${summary.total}; ${ctx.agentRoot === ctx.root ? "their traces in workspace/traces/latest/<id>/ were refreshed" : "(your copy of the agent runs without writing traces: the shared ones stay the accepted agent's)"}. Task runs left this iteration: ${ctx.taskRunBudget - ctx.state.taskRunsUsed}`,
    );
  } catch (e) {
    if (ctx.signal.aborted) throw new AbortedError("task run aborted", e);
    return fail(`the task run failed: ${errorMessage(e).slice(0, 2000)}`);
  }
}

async function checkAgentTool(ctx: ToolContext): Promise<ToolOutcome> {
  const result = await ctx.checkAgent(join(ctx.agentRoot, ctx.agentFile));
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
