/**
 * The coding model, played by the test LLM server, for races on the stochastic benchmark: the analysis names
 * the benchmark's families as failure patterns; each candidate's session (it reads its id and pattern from
 * the system prompt) views the agent file, writes the agent `plan` gives it, checks it and finishes. Every
 * request is recorded with the candidate it came from, so a test can count sessions and replays.
 */
import type { RecordedRequest, Responder, ScriptStep } from "../../dev/llm-server/llm-server.ts";
import { stochasticAgent } from "./stochastic.ts";

// biome-ignore lint/suspicious/noExplicitAny: request bodies are arbitrary JSON
type Json = any;

export const PATTERNS = ["alpha tasks fail", "delta tasks fail", "beta tasks fail", "gamma tasks wobble"];

export interface Session {
  iteration: number;
  /** c1, c2 … in a race; null for a round of one. */
  candidate: string | null;
  pattern: string | null;
}

/** What a session writes: the stochastic agent it describes, or this exact source. */
export type Plan = (s: Session) => { skills?: string[]; breaks?: string[]; variant: string; source?: string } | null;

/**
 * The stochastic agent with its skills on two lines far enough apart that a change to one applies three-way
 * on a change to the other; `layeredAgent([], [])` answers exactly as `stochasticAgent({ variant: "v0" })`.
 */
export function layeredAgent(one: string[], two: string[]): string {
  return [
    `const ONE: string[] = ${JSON.stringify(one)};`,
    "const PAD_A = 1;",
    "const PAD_B = 2;",
    "const PAD_C = 3;",
    "const PAD_D = 4;",
    `const TWO: string[] = ${JSON.stringify(two)};`,
    "",
    "export default {",
    '  run: async () => ({ skills: [...ONE, ...TWO], breaks: [] as string[], variant: "v0", pad: PAD_A + PAD_B + PAD_C + PAD_D }),',
    "};",
    "",
  ].join("\n");
}

function systemText(body: Json): string {
  const sys = body?.system;
  if (typeof sys === "string") return sys;
  return Array.isArray(sys) ? sys.map((b: Json) => (b?.type === "text" ? String(b.text) : "")).join("\n") : "";
}

export function sessionOf(req: RecordedRequest): Session {
  const text = systemText(req.body);
  return {
    iteration: Number(/# Iteration (\d+)/.exec(text)?.[1] ?? 0),
    candidate: /You are candidate (c\d+)/.exec(text)?.[1] ?? null,
    pattern: /Take this failure pattern: (.*)\.\n/.exec(text)?.[1] ?? null,
  };
}

const isCoding = (req: RecordedRequest): boolean =>
  Array.isArray(req.body?.tools) && req.body.tools.some((t: Json) => t?.name === "finish");

function toolUses(messages: Json[]): string[] {
  return messages
    .filter((m) => m.role === "assistant" && Array.isArray(m.content))
    .flatMap((m) => m.content.filter((b: Json) => b?.type === "tool_use").map((b: Json) => String(b.name)));
}

function use(name: string, input: unknown): ScriptStep {
  return { reply: { content: [{ type: "tool_use", name, input }], stop_reason: "tool_use" } };
}

/** The responder: coding sessions as above, anything else (an agent's call) answered "ok". */
export function raceCodingModel(plan: Plan, agentFile = "agent/agent.ts"): Responder & { sessions: Session[] } {
  const sessions: Session[] = [];
  const responder = (req: RecordedRequest): ScriptStep => {
    if (!isCoding(req)) return { reply: { content: [{ type: "text", text: "ok" }] } };
    const s = sessionOf(req);
    sessions.push(s);
    const body: Json = req.body;
    const done = toolUses(Array.isArray(body.messages) ? body.messages : []);
    const editPhase = body.tools.some((t: Json) => t?.name === "run_train_tasks");
    if (!editPhase) return use("finish", { patterns: PATTERNS, notes: "families fail at their base rates" });
    const agent = plan(s);
    if (agent && !done.includes("str_replace_based_edit_tool"))
      return use("str_replace_based_edit_tool", {
        command: "create",
        path: agentFile,
        file_text: agent.source ?? stochasticAgent(agent),
      });
    if (agent && !done.includes("check_agent")) return use("check_agent", {});
    return use("finish", {
      hypothesis: agent ? `${s.pattern ?? "the top pattern"}: ${agent.variant}` : "nothing worth changing",
      change_summary: agent ? `agent answers ${agent.variant}` : "no change",
      commit_message: agent ? `Try ${agent.variant}` : "No change",
      pattern: s.pattern ?? "none",
      needs_from_human: "none",
    });
  };
  return Object.assign(responder, { sessions });
}
