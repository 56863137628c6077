/** One model call through a real gateway to the test server, and what a train trace keeps of it (no vitest here: benches use it). */
import { llmEvent } from "../../src/benchmark/local/task-calls.ts";
import type { TraceEvent } from "../../src/benchmark/sealed/protocol.ts";
import { systemClock } from "../../src/clock.ts";
import { validateConfig } from "../../src/config/load.ts";
import { createGateway, type GatewayResult, type ReplySink } from "../../src/gateway/gateway.ts";
import { agentTargets } from "../../src/gateway/providers.ts";
import { createRunBudget } from "../../src/gateway/reservations.ts";

/**
 * One Messages call through a gateway to `serverUrl` (an Anthropic-format provider keyed `test-key-local`), and
 * the event a train trace keeps of it.
 */
export async function tracedCall(
  serverUrl: string,
  body: string,
  sink: ReplySink = { head: () => {}, chunk: () => {}, end: () => {}, fail: () => {} },
): Promise<{ result: GatewayResult; event: Extract<TraceEvent, { kind: "llm" }> }> {
  const { config, errors } = validateConfig({
    benchmark: "example",
    agent_model: "anthropic/claude-sonnet-4-6",
    providers: { anthropic: { format: "anthropic", base_url: serverUrl, api_key_env: "TRACED_KEY" } },
  });
  if (!config) throw new Error(errors.join("\n"));
  const { targets } = agentTargets(config, { TRACED_KEY: "test-key-local" });
  const gateway = createGateway({ targets, clock: systemClock, budget: createRunBudget(null) });
  const result = await gateway.handle({ method: "POST", path: "/v1/messages", headers: {}, body }, sink, {
    split: "train",
  });
  return { result, event: llmEvent(body, Date.now(), result) };
}
