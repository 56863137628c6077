/**
 * A deterministic stand-in for the CODING agent's model in the offline demo, served by the test LLM server.
 * It drives the real coding-agent tool loop: analyze lists the failing tasks and names patterns; edit views
 * agent/agent.ts and inserts the next policy rule the simulated agent model understands into the system
 * prompt. One scheduled iteration makes a deliberately bad change so the gate has something to reject.
 * Everything it writes starts with "[simulated model]".
 */
import type { ContentBlock, RecordedRequest, ScriptStep } from "../llm-server/llm-server.ts";
import { SIMULATED_PREFIX, SIMULATED_RULES, type SimulatedRule } from "./simulated-agent-model.ts";

/** The iteration whose edit is deliberately bad: a careless refactor that no longer type-checks. */
export const BAD_CHANGE_ITERATION = 2;

const EDITOR = "str_replace_based_edit_tool";
/** The agent file the phase instructions name (agent/agent.ts, or agent/agent.py for a Python agent). */
function agentFileOf(body: Json): string {
  return /agent\/agent\.py\b/.test(blockText(body.system)) ? "agent/agent.py" : "agent/agent.ts";
}

const PY_PROMPT = `SYSTEM_PROMPT = """`;

// biome-ignore lint/suspicious/noExplicitAny: request bodies are arbitrary JSON
type Json = any;

interface Call {
  name: string;
  input: Json;
  result: string;
  isError: boolean;
}

const PATTERN_NAMES: Record<SimulatedRule["id"], string> = {
  identity: "changes made without verifying the customer's identity",
  shipped: "shipped or delivered orders get cancelled",
  window: "refunds granted outside the 30-day window",
  partial: "whole-order refunds when only some items were asked about",
  amount: "refund amount missing from the reply",
  tracking: "tracking number missing from status replies",
  address: "address changed on orders that already left",
};

function say(text: string, use?: { name: string; input: unknown }): ScriptStep {
  const content: ContentBlock[] = [{ type: "text", text: `${SIMULATED_PREFIX} ${text}` }];
  if (use) content.push({ type: "tool_use", name: use.name, input: use.input });
  return { reply: { content, stop_reason: use ? "tool_use" : "end_turn" } };
}

function blockText(content: Json): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((b: Json) => (b?.type === "text" ? String(b.text) : "")).join("\n");
  return "";
}

function calls(messages: Json[]): Call[] {
  const results = new Map<string, { text: string; isError: boolean }>();
  for (const m of messages) {
    if (m.role !== "user" || !Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (b?.type === "tool_result") {
        results.set(b.tool_use_id, { text: blockText(b.content), isError: b.is_error === true });
      }
    }
  }
  const out: Call[] = [];
  for (const m of messages) {
    if (m.role !== "assistant" || !Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (b?.type === "tool_use") {
        const r = results.get(b.id);
        out.push({ name: b.name, input: b.input, result: r?.text ?? "", isError: r?.isError ?? false });
      }
    }
  }
  return out;
}

/** True when a request comes from the coding agent (it declares the editor tool and `finish`). */
export function isCodingAgentRequest(req: RecordedRequest): boolean {
  const tools: Json[] = Array.isArray(req.body?.tools) ? req.body.tools : [];
  const names = new Set(tools.map((t) => t?.name));
  return names.has(EDITOR) && names.has("finish");
}

/** The editor's `view` output is numbered (`     1\t...`); this recovers the file text. */
export function unnumber(view: string): string {
  return view
    .split("\n")
    .map((line) => line.replace(/^\s*\d+\t/, ""))
    .join("\n");
}

function iterationOf(body: Json): number {
  const system = typeof body.system === "string" ? body.system : blockText(body.system);
  return Number(/# Iteration (\d+)/.exec(system)?.[1] ?? 0);
}

export interface PlannedEdit {
  kind: "rule" | "bad" | "none";
  oldStr: string;
  newStr: string;
  hypothesis: string;
  changeSummary: string;
  commitMessage: string;
  pattern: string;
}

/** Decides the iteration's one change from the current agent file (pure, so it is table-testable). */
export function planEdit(source: string, iteration: number): PlannedEdit {
  if (source.includes(PY_PROMPT)) return planPythonEdit(source, iteration);
  if (iteration === BAD_CHANGE_ITERATION && /const MAX_TURNS = \d+;/.test(source)) {
    const old = /const MAX_TURNS = \d+;/.exec(source)?.[0] as string;
    return {
      kind: "bad",
      oldStr: old,
      newStr: "const MAX_TURNS: number = process.env.AGENT_MAX_TURNS ?? 6;",
      hypothesis: `${SIMULATED_PREFIX} some tasks need more tool turns than the fixed limit; an operator-tunable limit lets them finish`,
      changeSummary: `${SIMULATED_PREFIX} made MAX_TURNS configurable from AGENT_MAX_TURNS (a deliberately careless change: it does not type-check, so the gate rejects it)`,
      commitMessage: `${SIMULATED_PREFIX} make the turn limit configurable`,
      pattern: "tasks run out of turns",
    };
  }
  const rules = nextRules(source);
  const rule = rules[0];
  const start = source.indexOf("const SYSTEM_PROMPT = `");
  const end = start < 0 ? -1 : source.indexOf("`;", start);
  if (!rule || end < 0) {
    return {
      kind: "none",
      oldStr: "",
      newStr: "",
      hypothesis: `${SIMULATED_PREFIX} no rule left to add`,
      changeSummary: `${SIMULATED_PREFIX} no change`,
      commitMessage: `${SIMULATED_PREFIX} no change`,
      pattern: "none",
    };
  }
  // The prompt's last line plus its closing backtick is unique in the file, so str_replace accepts it.
  const lastLine = source.slice(source.lastIndexOf("\n", end) + 1, end);
  return { kind: "rule", oldStr: `${lastLine}\`;`, newStr: `${lastLine}\n${phrases(rules)}\`;`, ...ruleWords(rules) };
}

/**
 * The rules the next edit states. The first states the written policy's core at once (most failures are of
 * those patterns): a fix large enough to be measured on the demo's few held-out tasks. Later edits add one rule
 * each: gains of a task or two, which the gate cannot tell from noise on so few tasks and rightly rejects.
 */
function nextRules(source: string): SimulatedRule[] {
  const missing = SIMULATED_RULES.filter((r) => !source.includes(r.phrase));
  return missing.length === SIMULATED_RULES.length ? missing.slice(0, FIRST_EDIT_RULES) : missing.slice(0, 1);
}

const FIRST_EDIT_RULES = 6;

const phrases = (rules: SimulatedRule[]) => rules.map((r) => r.phrase).join("\n");

function ruleWords(rules: SimulatedRule[]): Omit<PlannedEdit, "kind" | "oldStr" | "newStr"> {
  const ids = rules.map((r) => r.id).join(", ");
  const patterns = rules.map((r) => `"${PATTERN_NAMES[r.id]}"`).join(", ");
  return {
    hypothesis: `${SIMULATED_PREFIX} the agent fails on ${patterns} because the system prompt never states ${rules.length > 1 ? "those policies" : "that policy"}`,
    changeSummary: `${SIMULATED_PREFIX} added the ${ids} rule${rules.length > 1 ? "s" : ""} to the system prompt`,
    commitMessage: `${SIMULATED_PREFIX} state the ${ids} polic${rules.length > 1 ? "ies" : "y"} in the system prompt`,
    pattern: PATTERN_NAMES[rules[0]!.id],
  };
}

/** The same plan for the Python template: a rule goes before the prompt's closing quotes. */
function planPythonEdit(source: string, iteration: number): PlannedEdit {
  const turns = /^MAX_TURNS = \d+$/m.exec(source)?.[0];
  if (iteration === BAD_CHANGE_ITERATION && turns) {
    return {
      kind: "bad",
      oldStr: turns,
      newStr: 'MAX_TURNS = int(__import__("os").environ.get("AGENT_MAX_TURNS", 6)',
      hypothesis: `${SIMULATED_PREFIX} some tasks need more tool turns than the fixed limit; an operator-tunable limit lets them finish`,
      changeSummary: `${SIMULATED_PREFIX} made MAX_TURNS configurable from AGENT_MAX_TURNS (a deliberately careless change: a missing parenthesis, so it does not compile and the gate rejects it)`,
      commitMessage: `${SIMULATED_PREFIX} make the turn limit configurable`,
      pattern: "tasks run out of turns",
    };
  }
  const rules = nextRules(source);
  const rule = rules[0];
  const quotes = PY_PROMPT.slice(-3);
  const end = source.indexOf(quotes, source.indexOf(PY_PROMPT) + PY_PROMPT.length);
  if (!rule || end < 0) return planEdit("", 0);
  const lastLine = source.slice(source.lastIndexOf("\n", end) + 1, end);
  return {
    kind: "rule",
    oldStr: `${lastLine}${quotes}`,
    newStr: `${lastLine}\n${phrases(rules)}${quotes}`,
    ...ruleWords(rules),
  };
}

function analyze(history: Call[]): ScriptStep {
  const listed = history.find((c) => c.name === "list_failing_tasks");
  if (!listed) return say("Listing the failing train tasks.", { name: "list_failing_tasks", input: {} });
  const failing = /^(\d+) of (\d+)/.exec(listed.result);
  return say("These are the patterns behind the failures.", {
    name: "finish",
    input: {
      patterns: SIMULATED_RULES.slice(0, 4).map((r) => PATTERN_NAMES[r.id]),
      notes: `${SIMULATED_PREFIX} ${failing ? `${failing[1]} of ${failing[2]} train tasks fail` : "failing tasks listed"}; the system prompt states none of the shop's policy.`,
    },
  });
}

function edit(history: Call[], iteration: number, AGENT: string): ScriptStep {
  const viewed = history.find((c) => c.name === EDITOR && c.input?.command === "view" && !c.isError);
  if (!viewed) return say(`Reading ${AGENT}.`, { name: EDITOR, input: { command: "view", path: AGENT } });
  const plan = planEdit(unnumber(viewed.result), iteration);
  const finish = () =>
    say("Done.", {
      name: "finish",
      input: {
        hypothesis: plan.hypothesis,
        change_summary: plan.changeSummary,
        commit_message: plan.commitMessage,
        pattern: plan.pattern,
        needs_from_human: "none",
      },
    });
  if (plan.kind === "none") return finish();
  const replaced = history.find((c) => c.name === EDITOR && c.input?.command === "str_replace");
  if (!replaced) {
    return say(plan.changeSummary.replace(`${SIMULATED_PREFIX} `, ""), {
      name: EDITOR,
      input: { command: "str_replace", path: AGENT, old_str: plan.oldStr, new_str: plan.newStr },
    });
  }
  if (!history.some((c) => c.name === "check_agent"))
    return say("Checking the agent.", { name: "check_agent", input: {} });
  return finish();
}

/** The Responder for coding-agent requests. */
export function simulatedCodingModel(req: RecordedRequest, _index = 0): ScriptStep {
  const body: Json = req.body ?? {};
  const history = calls(Array.isArray(body.messages) ? body.messages : []);
  const tools: Json[] = Array.isArray(body.tools) ? body.tools : [];
  const isEdit = tools.some((t) => t?.name === "run_train_tasks");
  return isEdit ? edit(history, iterationOf(body), agentFileOf(body)) : analyze(history);
}
