/**
 * The coding agent (DESIGN §6): analyze and edit phases as tool loops over the Messages API,
 * each reply journaled before its tools run, so a crashed step replays its paid replies from the
 * journal instead of paying again, and a budget reserved before every call.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchmarkRunner } from "../benchmark/types.ts";
import type { Clock } from "../clock.ts";
import type { AnalyzeOutput, EditInput, EditOutput } from "../contracts.ts";
import { AbortedError } from "../errors.ts";
import { pinnedSplit } from "../journal/pins.ts";
import { stepKey } from "../journal/runs.ts";
import type { Stores } from "../journal/stores.ts";
import { learningsDigest } from "../learnings/learnings.ts";
import {
  type AnthropicClient,
  callMessages,
  costUsd,
  type Message,
  type MessageParam,
  type MessageParams,
  type PriceOverrides,
} from "../llm/client.ts";
import { listEditable } from "../workspace/editable.ts";
import { writeFileAtomic } from "../workspace/files.ts";
import { AGENT_FILE, paths } from "../workspace/paths.ts";
import { buildDigest, phaseInstructions, readProgram } from "./prompts.ts";
import type { TrainIds } from "./sandbox.ts";
import { CodingSpend } from "./spend.ts";
import {
  analyzeFinishInput,
  type CheckAgent,
  type Phase,
  runTool,
  type ToolContext,
  toolDeclarations,
} from "./tools.ts";

export interface CodingAgentLimits {
  /** Model turns per phase before the loop stops without `finish`. */
  maxTurns: number;
  /** max_tokens of each call. */
  maxTokens: number;
  /** Train task runs the edit phase may spend per iteration. */
  taskRunBudget: number;
  /** Whole-run money limit (coding + agent spend); null: none. */
  budgetUsd: number | null;
  /** Continuous API failure for this long ends the call with LLM_UNAVAILABLE. */
  outageMs: number;
  /** Input + output tokens per phase before the loop stops without `finish`; null: none. */
  maxPhaseTokens?: number | null;
}

export interface CodingAgentLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface IterationRef {
  runId: string;
  iteration: number;
}

export interface CodingAgentOptions {
  root: string;
  /** The ledger (every call, and the replies a resumed step replays) and the pins (the split's train ids). */
  journal: Pick<Stores, "ledger" | "pins">;
  log: CodingAgentLog;
  client: AnthropicClient;
  clock: Clock;
  model: string;
  /** The model for a round, when it changes with the proposer's angle; default: `model` throughout. */
  modelFor?: (ref: IterationRef) => string;
  runner?: BenchmarkRunner;
  checkAgent: CheckAgent;
  /** The agent file relative to the root (config `agent_file`; default agent/agent.ts). */
  agentFile?: string;
  /** What the model may change: the agent file first, then the config's `editable` patterns (default: the file alone). */
  editable?: readonly string[];
  /** History for the prompt (last learnings entries, rejected hypotheses); default reads workspace/learnings.md. */
  digest?: (ref: IterationRef) => string | Promise<string>;
  /** agent/agent.ts as of the last accepted commit: the edit phase starts from it, discarding a half-made edit. */
  baseContent: (ref: IterationRef) => string | Promise<string>;
  limits: CodingAgentLimits;
  prices?: PriceOverrides;
  /** Longest tool result handed to the model. */
  maxResultChars?: number;
  /** Hard limit of one regex trace search (default REGEX_TIMEOUT_MS). */
  regexTimeoutMs?: number;
  /** Outer retry backoff (callMessages). */
  backoff?: { minMs?: number; maxMs?: number };
}

/** One candidate of a race: its own session, on its own copy of the experiment, with its own pattern. */
export interface CandidateSession {
  /** The candidate's arm id: its conversation is journaled under its own key. */
  id: string;
  /** Its own copy of the experiment (a worktree), already at its base: the session never resets it. */
  root: string;
  /** The failure pattern it takes, and those its siblings took. */
  pattern: string | null;
  siblings: string[];
  /** Its place in the race, e.g. 2 of 3. */
  index: number;
  of: number;
}

export interface CodingAgent {
  analyze(input: IterationRef & { trainScore: number | null }, signal: AbortSignal): Promise<AnalyzeOutput>;
  edit(input: EditInput, signal: AbortSignal, candidate?: CandidateSession): Promise<EditOutput>;
}

type ContentParam = Exclude<MessageParam["content"], string>[number];

interface PhaseResult {
  finish: unknown | null;
  turns: number;
  /** Why the loop ended without `finish`. */
  stoppedBy: "turns" | "tokens" | null;
  paidCalls: number;
  replayedCalls: number;
}

/** JSON with sorted keys, so equal requests hash equal however their objects were built. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function promptHash(params: MessageParams): string {
  return createHash("sha256").update(canonicalJson(params)).digest("hex");
}

/** The reply's content as request params: only the fields the API takes back. */
function toParams(content: Message["content"]): ContentParam[] {
  const out: ContentParam[] = [];
  for (const block of content) {
    if (block.type === "text") out.push({ type: "text", text: block.text });
    else if (block.type === "tool_use")
      out.push({ type: "tool_use", id: block.id, name: block.name, input: block.input });
  }
  return out;
}

/** Marks the conversation's last block as a cache breakpoint, so each turn reads the previous turns from cache. */
function withCacheMarker(messages: MessageParam[]): MessageParam[] {
  const last = messages.at(-1);
  if (!last) return messages;
  const blocks: ContentParam[] =
    typeof last.content === "string" ? [{ type: "text", text: last.content }] : last.content.map((b) => ({ ...b }));
  const tail = blocks.at(-1) as ContentParam & { cache_control?: unknown };
  tail.cache_control = { type: "ephemeral" };
  return [...messages.slice(0, -1), { ...last, content: blocks } as MessageParam];
}

function storedMessage(m: Message): Message {
  // What a replay needs, without transport extras.
  return {
    id: m.id,
    type: m.type,
    role: m.role,
    model: m.model,
    content: m.content,
    stop_reason: m.stop_reason,
    stop_sequence: m.stop_sequence,
    usage: m.usage,
  } as Message;
}

/** The train tasks of the split the journal pins: the only ones whose traces and runs the model may reach. */
function trainIdsOf(pins: CodingAgentOptions["journal"]["pins"]): TrainIds {
  const split = pinnedSplit(pins);
  return split ? new Set(split.train) : null;
}

export function createCodingAgent(opts: CodingAgentOptions): CodingAgent {
  const { root, journal, log, limits, prices } = opts;
  const maxResultChars = opts.maxResultChars ?? 20_000;
  const agentRel = opts.agentFile ?? AGENT_FILE;
  const editable = opts.editable ?? [agentRel];
  const agentFile = paths(root, undefined, agentRel).agentFile;
  const readAgent = (): string => (existsSync(agentFile) ? readFileSync(agentFile, "utf8") : "");
  /** Every editable file's content in a copy of the experiment: what an edit changed, or did not. */
  const snapshot = (at: string): string =>
    listEditable(at, editable)
      .map((rel) => `${rel}\u0000${readFileSync(join(at, rel), "utf8")}`)
      .join("\u0001");
  const history = (ref: IterationRef) => (opts.digest ? opts.digest(ref) : learningsDigest(paths(root).learnings));
  const trainIds = () => trainIdsOf(journal.pins);
  const a: AgentContext = {
    opts,
    agentRel,
    editable,
    maxResultChars,
    trainIds,
    spend: new CodingSpend({ ledger: journal.ledger, log, budgetUsd: limits.budgetUsd, prices }),
  };

  return {
    async analyze(input, signal) {
      const ref = { runId: input.runId, iteration: input.iteration };
      const digest = buildDigest(root, {
        iteration: input.iteration,
        trainScore: input.trainScore,
        history: await history(ref),
        trainIds: trainIds(),
      });
      const result = await runPhase(a, "analyze", ref, digest, signal);
      const parsed = analyzeFinishInput.safeParse(result.finish);
      if (!parsed.success) {
        log.warn(
          { turns: result.turns, stoppedBy: result.stoppedBy },
          "analysis ended without finish; no patterns named",
        );
        return { patterns: [] };
      }
      log.info({ turns: result.turns, paid: result.paidCalls, replayed: result.replayedCalls }, "analysis finished");
      const { patterns, notes } = parsed.data;
      return notes === undefined ? { patterns } : { patterns, notes };
    },

    async edit(input, signal, candidate) {
      const ref = { runId: input.runId, iteration: input.iteration };
      // Start from the iteration's base: a re-run after a crash must not build on a half-made edit. A
      // candidate's copy is made afresh at its base by whoever races it.
      if (!candidate) {
        const base = await opts.baseContent(ref);
        if (readAgent() !== base) writeFileAtomic(agentFile, base);
      }
      const at = candidate?.root ?? root;
      const before = snapshot(at);
      const digest = buildDigest(root, {
        iteration: input.iteration,
        // A snapshot persisted before these reached the edit restores its input without them.
        trainScore: input.trainScore ?? null,
        history: await history(ref),
        analysis: input.analysis ?? null,
        trainIds: trainIds(),
        ...(candidate ? { candidate } : {}),
      });
      const result = await runPhase(a, "edit", ref, digest, signal, candidate);
      const changed = snapshot(at) !== before;
      log.info(
        {
          turns: result.turns,
          paid: result.paidCalls,
          replayed: result.replayedCalls,
          changed,
          stoppedBy: result.stoppedBy,
        },
        "edit phase ended",
      );
      if (result.finish !== null) {
        const f = result.finish as {
          hypothesis: string;
          change_summary: string;
          commit_message: string;
          pattern: string;
          needs_from_human: string;
        };
        return {
          changed,
          hypothesis: f.hypothesis,
          changeSummary: f.change_summary,
          commitMessage: f.commit_message,
          pattern: f.pattern,
          needsFromHuman: f.needs_from_human,
        };
      }
      const limit =
        result.stoppedBy === "tokens"
          ? `its token limit of ${limits.maxPhaseTokens} tokens`
          : `its turn limit of ${limits.maxTurns} turns`;
      return {
        changed,
        hypothesis: `(none stated: the edit phase hit ${limit} before calling finish)`,
        changeSummary: `The edit phase hit ${limit} before calling finish; ${agentRel} is ${changed ? "changed" : "unchanged"}.`,
        commitMessage: `Edit ${agentRel} (the coding agent hit ${limit} before finishing)`,
        pattern: input.analysis?.patterns[0] ?? "unknown",
        needsFromHuman: "none",
      };
    },
  };
}

/** What every phase of one coding agent shares. */
interface AgentContext {
  opts: CodingAgentOptions;
  agentRel: string;
  editable: readonly string[];
  maxResultChars: number;
  trainIds: () => TrainIds;
  spend: CodingSpend;
}

async function runPhase(
  a: AgentContext,
  phase: Phase,
  ref: IterationRef,
  digest: string,
  signal: AbortSignal,
  candidate?: CandidateSession,
): Promise<PhaseResult> {
  const { opts, agentRel, editable, spend } = a;
  const { root, journal, limits } = opts;
  const model = opts.modelFor?.(ref) ?? opts.model;
  const key = stepKey(ref.runId, ref.iteration, candidate ? `${phase}:${candidate.id}` : phase);
  const system: MessageParams["system"] = [
    // PROGRAM.md and the instructions change rarely: cached. The digest changes every iteration: not.
    {
      type: "text",
      text: `${readProgram(root)}\n\n${phaseInstructions(phase, agentRel, editable)}`,
      cache_control: { type: "ephemeral" },
    },
    { type: "text", text: digest },
  ];
  const tools = toolDeclarations(phase, agentRel);
  const messages: MessageParam[] = [
    { role: "user", content: phase === "analyze" ? "Begin the analysis." : "Begin the edit." },
  ];
  const ctx: ToolContext = {
    root,
    agentRoot: candidate?.root ?? root,
    agentFile: agentRel,
    editable,
    phase,
    runId: ref.runId,
    iteration: ref.iteration,
    signal,
    runner: opts.runner,
    checkAgent: opts.checkAgent,
    taskRunBudget: limits.taskRunBudget,
    maxResultChars: a.maxResultChars,
    trainIds: a.trainIds(),
    ...(opts.regexTimeoutMs === undefined ? {} : { regexTimeoutMs: opts.regexTimeoutMs }),
    state: { taskRunsUsed: 0 },
  };
  const result: PhaseResult = { finish: null, turns: 0, stoppedBy: null, paidCalls: 0, replayedCalls: 0 };
  let tokens = 0;

  while (true) {
    if (result.turns >= limits.maxTurns) {
      result.stoppedBy = "turns";
      return result;
    }
    if (limits.maxPhaseTokens != null && tokens >= limits.maxPhaseTokens) {
      result.stoppedBy = "tokens";
      return result;
    }
    if (signal.aborted) throw new AbortedError(`${phase} aborted`, signal.reason);
    result.turns += 1;
    const params: MessageParams = {
      model,
      max_tokens: limits.maxTokens,
      system,
      tools,
      messages: withCacheMarker(messages),
    };
    const hash = promptHash(params);
    let message = journal.ledger.findLlmResponse(key, hash) as Message | undefined;
    if (message) {
      result.replayedCalls += 1;
    } else {
      message = await payCall(a, ref, key, hash, params, signal);
      result.paidCalls += 1;
      spend.warn(ref.runId);
    }
    tokens += message.usage.input_tokens + message.usage.output_tokens;
    const content = toParams(message.content);
    messages.push({ role: "assistant", content: content.length > 0 ? content : [{ type: "text", text: "(empty)" }] });
    const toolUses = content.filter((b) => b.type === "tool_use");
    if (toolUses.length === 0) {
      messages.push({ role: "user", content: "Use the tools to continue; call `finish` when you are done." });
      continue;
    }
    const results: ContentParam[] = [];
    for (const use of toolUses) {
      const outcome = await runTool(ctx, use.name, use.input);
      if (outcome.finish !== undefined && result.finish === null) result.finish = outcome.finish;
      results.push({
        type: "tool_result",
        tool_use_id: use.id,
        content: outcome.content,
        ...(outcome.isError ? { is_error: true } : {}),
      });
    }
    if (result.finish !== null) return result;
    messages.push({ role: "user", content: results });
  }
}

/** A stop lets a call in flight land its paid reply this long, inside the 4 s a stop has before the process exits. */
const CALL_DRAIN_MS = 2_500;

/** One call paid for: its worst case reserved, the reply journaled before any tool runs. */
async function payCall(
  a: AgentContext,
  ref: IterationRef,
  key: string,
  hash: string,
  params: MessageParams,
  signal: AbortSignal,
): Promise<Message> {
  const { journal, client, clock, log, limits, prices, backoff } = a.opts;
  const { model } = params;
  const { spend } = a;
  const held = spend.reserve(ref.runId, params);
  const call = await callMessages(client, params, {
    signal,
    drainMs: CALL_DRAIN_MS,
    clock,
    log,
    outageMs: limits.outageMs,
    ...(backoff?.minMs === undefined ? {} : { minBackoffMs: backoff.minMs }),
    ...(backoff?.maxMs === undefined ? {} : { maxBackoffMs: backoff.maxMs }),
  }).finally(() => spend.release(held));
  const { message } = call;
  const usage = message.usage;
  // Journaled before any tool runs: a crash after this point replays the reply instead of paying again.
  journal.ledger.recordLlmCall({
    runId: ref.runId,
    iteration: ref.iteration,
    stepKey: key,
    role: "coding",
    model,
    promptHash: hash,
    inputTokens: usage.input_tokens,
    outputTokens: usage.output_tokens,
    cacheCreationTokens: usage.cache_creation_input_tokens ?? 0,
    cacheReadTokens: usage.cache_read_input_tokens ?? 0,
    costUsd: costUsd(model, usage, prices),
    latencyMs: call.latencyMs,
    stopReason: message.stop_reason,
    response: storedMessage(message),
  });
  return message;
}
