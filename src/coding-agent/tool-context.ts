/** What every tool of the coding agent shares: its context, its outcome, and the small helpers they all use. */
import type { z } from "zod";
import type { BenchmarkRunner } from "../benchmark/types.ts";
import type { TrainIds } from "./sandbox.ts";

export const EDITOR_TOOL = "str_replace_based_edit_tool";
/** A regex search that has not finished by then is stopped: far above what a sane pattern needs over a run's traces. */
export const REGEX_TIMEOUT_MS = 5_000;
export type Phase = "analyze" | "edit";

export type CheckAgent = (agentFile: string) => Promise<{ ok: true } | { ok: false; message: string }>;

export interface ToolContext {
  root: string;
  /**
   * Where the agent's folder is read and written: the experiment's root, or a candidate's own copy of it
   * (a race's worktree). Traces, results and PROGRAM.md are always the experiment's.
   */
  agentRoot: string;
  /** The agent file relative to the root (config `agent_file`). */
  agentFile: string;
  /** What the model may change: the agent file first, then the config's `editable` patterns. */
  editable: readonly string[];
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

export const fail = (content: string): ToolOutcome => ({ content, isError: true });
export const ok = (content: string): ToolOutcome => ({ content, isError: false });

export function zodProblem(tool: string, error: z.ZodError): string {
  const problems = error.issues.map((i) => `${i.path.map(String).join(".") || "(input)"}: ${i.message}`);
  return `invalid input for ${tool}: ${problems.join("; ")}`;
}

/** Cuts a result so one tool call cannot flood the context; the note says how to get the rest. */
export function cut(text: string, max: number, how: string): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}\n[truncated: showed ${max} of ${text.length} characters; ${how}]`;
}

export function numbered(lines: string[], from: number): string {
  return lines.map((l, i) => `${String(from + i).padStart(6)}\t${l}`).join("\n");
}
