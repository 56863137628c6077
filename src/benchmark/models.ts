/**
 * The models of the agent under test: the gateway its calls go through (the config's providers and models,
 * the harness's keys), each call reserved against the run's budget before it is forwarded and journaled the
 * moment its reply completes, before its task has an outcome: a task cut short by a stop or a crash leaves
 * no paid call out of the ledger.
 */
import { randomUUID } from "node:crypto";
import type { Clock } from "../clock.ts";
import { type Config, providersOf } from "../config/schema.ts";
import type { Split } from "../domain.ts";
import { type CallBudget, createGateway, type Gateway, type GatewayResult, type PaidCall } from "../gateway/gateway.ts";
import { MOST_EXPENSIVE } from "../gateway/prices.ts";
import { agentTargets, resolveProvider, type Target } from "../gateway/providers.ts";
import { createRunBudget } from "../gateway/reservations.ts";
import type { LlmCallRow, LlmLedger } from "../journal/stores.ts";
import { connectionClass } from "../llm/client.ts";
import type { InfraClass } from "./failure.ts";

/** Whose calls these are: the run and iteration they are spent in, and the split that paid for them. */
export interface CallTags {
  runId: string | null;
  iteration: number | null;
  split: Split;
}

export interface AgentModels {
  /** The gateway for one batch's calls; what it reports paid carries the batch's tags. */
  gateway(tags: CallTags): Gateway;
}

/** A paid call as the ledger keeps it: agent spend, never a reply (train replies live in the traces). */
export function paidRow(paid: PaidCall, tags: CallTags): LlmCallRow {
  return {
    runId: tags.runId,
    iteration: tags.iteration,
    stepKey: null,
    role: "agent",
    // A bare name is an Anthropic model, as the config writes it.
    model: paid.model.startsWith("anthropic/") ? paid.model.slice("anthropic/".length) : paid.model,
    promptHash: null,
    inputTokens: paid.inputTokens,
    outputTokens: paid.outputTokens,
    cacheCreationTokens: paid.cacheCreationTokens,
    cacheReadTokens: paid.cacheReadTokens,
    costUsd: paid.costUsd,
    latencyMs: paid.latencyMs,
    stopReason: paid.stopReason,
    response: null,
    callId: paid.callId,
    split: paid.split ?? tags.split,
  };
}

/**
 * The models the agent may call. Preflight refuses a model without a known price before a run starts; one
 * that reaches here anyway (a test, the CLI's `benchmark`) is reserved and metered at the table's dearest price.
 */
export function modelTargets(
  config: Pick<Config, "agent_model" | "agent_models" | "providers" | "prices">,
  env: NodeJS.ProcessEnv,
): Target[] {
  const { targets, unpriced } = agentTargets(config, env);
  const providers = new Map(targets.map((t) => [t.provider.name, t.provider]));
  const configured = providersOf(config);
  const dearest = unpriced.flatMap(({ provider: name, model }) => {
    const cfg = configured[name];
    if (!cfg) return [];
    const provider = providers.get(name) ?? resolveProvider(name, cfg, env);
    providers.set(name, provider);
    return [{ ref: `${name}/${model}`, provider, model, price: MOST_EXPENSIVE }];
  });
  return [...targets, ...dearest];
}

export interface GatewayModelsOptions {
  targets: readonly Target[];
  clock: Clock;
  /** The reservation book of a run's calls. */
  budgetFor(tags: CallTags): CallBudget;
  /** Where a paid call goes the moment its reply completes (the ledger, or a worker's report to its daemon). */
  record(row: LlmCallRow): void;
  log?: { warn(obj: object, msg: string): void };
}

/** One gateway per batch over the same targets: each call reserved in its run's book and recorded when paid. */
export function gatewayModels(o: GatewayModelsOptions): AgentModels {
  return {
    gateway: (tags) =>
      createGateway({
        targets: o.targets,
        clock: o.clock,
        budget: o.budgetFor(tags),
        onPaid: (paid) => o.record(paidRow(paid, tags)),
        ...(o.log ? { log: o.log } : {}),
      }),
  };
}

export interface JournaledModelsOptions {
  targets: readonly Target[];
  clock: Clock;
  /** Where each paid call is written as it is paid, and where the run's spend is read for its budget. */
  ledger: Pick<LlmLedger, "recordPaidCall" | "spend">;
  budgetUsd: number | null;
  log?: { warn(obj: object, msg: string): void };
}

/**
 * Models whose paid calls go straight into the journal's ledger (the daemon's own executors). A run's calls
 * share one reservation book, so concurrent batches of a run cannot together overrun budget_usd; its spend is
 * read from the ledger, so the coding agent's counts as well.
 */
export function journaledModels(o: JournaledModelsOptions): AgentModels {
  const budgets = new Map<string, CallBudget>();
  const unlimited = createRunBudget(null);
  return gatewayModels({
    targets: o.targets,
    clock: o.clock,
    budgetFor: ({ runId }) => {
      if (runId === null || o.budgetUsd === null) return unlimited;
      let budget = budgets.get(runId);
      if (!budget) {
        budget = createRunBudget(o.budgetUsd, () => o.ledger.spend(runId).totalUsd);
        budgets.set(runId, budget);
      }
      return budget;
    },
    record: (row) => {
      o.ledger.recordPaidCall(row);
    },
    ...(o.log ? { log: o.log } : {}),
  });
}

/** The ids of one execution of a task's calls: unique to the execution, so a re-run's calls are new calls. */
export function callIds(): () => string {
  const execution = randomUUID();
  let seq = 0;
  return () => `${execution}/${++seq}`;
}

/** The class a failed call leaves its task with, as the runner tallies it: "HTTP 429", "connection error"… */
export function infraClassOf(result: GatewayResult): InfraClass {
  switch (result.class) {
    case "upstream-auth":
    case "upstream-http":
      return `HTTP ${result.status}`;
    case "upstream-connection": {
      // The gateway's reason ends with the network error's code, as fetch hid it: "fetch failed (ECONNREFUSED)".
      const code = /\(([A-Z][A-Z_]+)\)$/.exec(result.reason ?? "")?.[1];
      return code ? connectionClass(code) : "connection error";
    }
    case "upstream-stream":
      return "stream broke off";
    case "budget-unknown":
      return "budget unknown";
    default:
      return result.class;
  }
}
