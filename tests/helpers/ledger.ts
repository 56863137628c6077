import type { LlmCallRow } from "../../src/journal/stores.ts";

/** An LLM call as the ledger keeps it, with only what a test cares about given. */
export function llmCallRow(o: Pick<LlmCallRow, "runId" | "iteration" | "role" | "costUsd">): LlmCallRow {
  return {
    stepKey: null,
    model: "m",
    promptHash: null,
    inputTokens: 10,
    outputTokens: 10,
    cacheCreationTokens: 0,
    cacheReadTokens: 0,
    latencyMs: 5,
    stopReason: "end_turn",
    response: null,
    ...o,
  };
}
