/**
 * What `prepare`, `run` and `daemon` check before they start: each failing check is one line naming the
 * fix, and the command exits 2 before anything is paid. A check is a small object in a list, so a new
 * requirement (a tool, a file) is one more entry.
 */

import { commandProblem } from "../benchmark/adapters/command.ts";
import type { Clock } from "../clock.ts";
import { type Config, modelRef, providersOf } from "../config/schema.ts";
import { probeRedis, redisWhere } from "../distributed/queue.ts";
import { EXIT_RESUMABLE, errorMessage, HarnessError, UserError } from "../errors.ts";
import { checkOpenaiProvider } from "../gateway/check.ts";
import { knownPrice } from "../gateway/prices.ts";
import { agentModelRefs, agentTargets, type Provider, resolveProvider } from "../gateway/providers.ts";
import type { LlmLedger, RunRow } from "../journal/stores.ts";
import { type AnthropicClient, createAnthropic, describeLlmFailure, isLocalUrl } from "../llm/client.ts";

export interface PreflightContext {
  root: string;
  config: Config;
  env: NodeJS.ProcessEnv;
  clock: Clock;
  /** The run about to be resumed; null when a new run starts (or for `prepare`). */
  resuming: RunRow | null;
  journal: LlmLedger | null;
  /** The client the endpoint check calls; by default one built from the environment. */
  client?: AnthropicClient;
}

export interface PreflightCheck {
  name: string;
  /** null when the check passes; otherwise one line saying what is wrong and how to fix it. */
  check(ctx: PreflightContext): Promise<string | null> | string | null;
}

/** The coding agent (and the agent under test) need a key unless they talk to a local test server. */
export const apiKeyCheck: PreflightCheck = {
  name: "api key",
  check: ({ env }) =>
    env.ANTHROPIC_API_KEY || isLocalUrl(env.ANTHROPIC_BASE_URL)
      ? null
      : "ANTHROPIC_API_KEY is not set; export it (or point ANTHROPIC_BASE_URL at a compatible endpoint with its key)",
};

/** A new run past its deadline would stop at once, for good; a resumed one ends itself cleanly. */
export const deadlineCheck: PreflightCheck = {
  name: "deadline",
  check: ({ config, clock, resuming }) => {
    if (!config.deadline || resuming) return null;
    const at = Date.parse(config.deadline);
    if (at > clock.now()) return null;
    return (
      `deadline ${config.deadline} is already past (now ${new Date(clock.now()).toISOString()}); ` +
      "move `deadline` in experiment_config.yaml to a future time (or set it to null)"
    );
  },
};

/** A resumed run whose spend already reached budget_usd could do nothing but stop. */
export const budgetCheck: PreflightCheck = {
  name: "budget",
  check: ({ config, resuming, journal }) => {
    if (config.budget_usd === null || !resuming || !journal) return null;
    const spent = journal.spend(resuming.id).totalUsd;
    if (spent < config.budget_usd) return null;
    return (
      `run ${resuming.id} has spent $${spent.toFixed(2)} of budget_usd ${config.budget_usd}; ` +
      "raise `budget_usd` in experiment_config.yaml to continue it (or `auto-harness run --new` for a new run)"
    );
  },
};

/** A provider the agent calls through the gateway needs its key in the harness's environment. */
export const providerKeyCheck: PreflightCheck = {
  name: "provider keys",
  check: ({ config, env }) => {
    const providers = providersOf(config);
    for (const ref of agentModelRefs(config)) {
      const name = modelRef(ref).provider;
      const cfg = providers[name];
      const keyEnv = cfg?.api_key_env;
      if (!cfg || !keyEnv || env[keyEnv] || isLocalUrl(resolveProvider(name, cfg, env).baseUrl)) continue;
      return `${keyEnv} is not set (providers.${name}.api_key_env, for ${ref}); export it, or set api_key_env: null for a provider that needs no key`;
    }
    return null;
  },
};

type AnthropicApi = Pick<AnthropicClient, "messages">;

/** One line when an Anthropic endpoint does not answer for a model; null when every model answers. */
async function checkAnthropicModels(
  api: AnthropicApi,
  models: readonly string[],
  where: string,
): Promise<string | null> {
  for (const model of models) {
    const messages = [{ role: "user" as const, content: "ping" }];
    let failure: unknown = null;
    try {
      await api.messages.countTokens({ model, messages });
      continue;
    } catch (error) {
      failure = error;
    }
    const status = (failure as { status?: unknown }).status;
    if (status === 404 || status === 405) {
      // Either the model is unknown or the endpoint has no count_tokens: a real call tells them apart.
      try {
        await api.messages.create({ model, max_tokens: 1, messages });
        continue;
      } catch (error) {
        failure = error;
      }
    }
    if ((failure as { status?: unknown }).status === 404 && /\/v1\/?$/.test(where)) {
      return `${where} ends in /v1, but the Anthropic SDK adds /v1 itself; drop it from the base URL (ANTHROPIC_BASE_URL or the provider's base_url)`;
    }
    const line = describeLlmFailure(failure, { model, where });
    if (line.fatal) return line.message;
  }
  return null;
}

/**
 * One cheap call per model (count_tokens, free on Anthropic's API; an OpenAI-format provider's model list):
 * a wrong key, base URL or model name fails here instead of hours later. An endpoint without count_tokens gets
 * a 1-token message instead. A transient answer (429, 5xx) means the endpoint is there; the loop's own retries
 * handle the rest.
 */
export const endpointCheck: PreflightCheck = {
  name: "endpoint",
  check: async ({ config, env, client }) => {
    const api =
      client ??
      createAnthropic({
        ...(env.ANTHROPIC_BASE_URL ? { baseURL: env.ANTHROPIC_BASE_URL } : {}),
        ...(env.ANTHROPIC_API_KEY ? { apiKey: env.ANTHROPIC_API_KEY } : {}),
        maxRetries: 1,
        timeoutMs: 20_000,
      });
    const { targets } = agentTargets(config, env);
    const viaEnv = targets.filter((t) => t.provider.name === "anthropic").map((t) => t.model);
    const where = env.ANTHROPIC_BASE_URL ?? "api.anthropic.com";
    const coding = [config.coding_model, ...config.coding_models];
    const problem = await checkAnthropicModels(api, [...new Set([...coding, ...viaEnv])], where);
    if (problem) return problem;
    const byProvider = new Map<Provider, string[]>();
    for (const t of targets.filter((t) => t.provider.name !== "anthropic")) {
      byProvider.set(t.provider, [...(byProvider.get(t.provider) ?? []), t.model]);
    }
    for (const [provider, models] of byProvider) {
      const own =
        provider.format === "openai"
          ? await checkOpenaiProvider(provider, models)
          : await checkAnthropicModels(
              createAnthropic({
                baseURL: provider.baseUrl,
                ...(provider.apiKey ? { apiKey: provider.apiKey } : {}),
                maxRetries: 1,
                timeoutMs: 20_000,
              }),
              models,
              provider.baseUrl,
            );
      if (own) return own;
    }
    return null;
  },
};

/**
 * Every model the run calls has a price, from the project's table or the config's `prices`: a call to an
 * unpriced model could not be reserved or metered, so it is refused before anything is paid.
 */
export const priceCheck: PreflightCheck = {
  name: "prices",
  check: ({ config, env }) => {
    const unpriced = agentTargets(config, env).unpriced.map((m) => `${m.provider}/${m.model}`);
    for (const model of [...config.coding_models].reverse())
      if (!knownPrice(model, config.prices)) unpriced.unshift(model);
    if (!knownPrice(config.coding_model, config.prices)) unpriced.unshift(config.coding_model);
    const ref = unpriced[0];
    if (ref === undefined) return null;
    return `no price is known for \`${ref}\`; add one to experiment_config.yaml in USD per million tokens, e.g. prices: { ${ref}: { input: 1, output: 4 } } (for a free local model, 0 and 0)`;
  },
};

/** How long a Redis may take to answer before `prepare`, `run` or a worker refuses it. */
export const REDIS_CONNECT_TIMEOUT_MS = 5_000;

/**
 * `executor: bullmq` needs its Redis: a wrong or unreachable `redis_url` is refused within a connect timeout
 * instead of hanging on "running baseline". A run that used it before may only be waiting for it to come back:
 * unreachable then pauses (exit 75, pm2 retries) rather than refusing.
 */
export const redisCheck: PreflightCheck = {
  name: "redis",
  check: async ({ config, resuming }) => {
    if (config.executor !== "bullmq" || !config.redis_url) return null;
    const problem = await probeRedis(config.redis_url, REDIS_CONNECT_TIMEOUT_MS);
    if (!problem) return null;
    const line = `redis_url ${redisWhere(config.redis_url)}: ${problem.why}; check redis_url in experiment_config.yaml and that redis-server runs there`;
    if (resuming && problem.unreachable) {
      throw new HarnessError("INFRA_FAILURE", `${line}; the run stays paused until Redis answers`, {
        exitCode: EXIT_RESUMABLE,
      });
    }
    return line;
  },
};

/** A `command` benchmark's program must be there: a missing one would fail every task, hours into the night. */
export const commandCheck: PreflightCheck = {
  name: "benchmark command",
  check: ({ config, root, env }) =>
    config.benchmark === "command" && config.command ? commandProblem(config.command.run, root, env.PATH) : null,
};

/** What `prepare` checks before it pays for the baseline, cheapest first. */
export const PREPARE_CHECKS: PreflightCheck[] = [
  commandCheck,
  apiKeyCheck,
  providerKeyCheck,
  redisCheck,
  endpointCheck,
  priceCheck,
];
/** What `run`, `resume` and `daemon` check: the run's limits, then what `prepare` checks. */
export const RUN_CHECKS: PreflightCheck[] = [deadlineCheck, budgetCheck, ...PREPARE_CHECKS];
/** Checks that need no API (stand-in steps in tests and benchmarks). */
export const LIMIT_CHECKS: PreflightCheck[] = [deadlineCheck, budgetCheck, commandCheck, redisCheck];

/**
 * Runs the checks in order; the first failure ends the command with exit 2 and its line (a check's own typed
 * error, such as a resumed run's Redis that is away, ends it with that error's code).
 */
export async function runPreflight(checks: readonly PreflightCheck[], ctx: PreflightContext): Promise<void> {
  for (const c of checks) {
    let problem: string | null;
    try {
      problem = await c.check(ctx);
    } catch (error) {
      if (error instanceof HarnessError) throw error;
      problem = `${c.name} check failed: ${errorMessage(error)}`;
    }
    if (problem) throw new UserError("PREFLIGHT_FAILED", problem);
  }
}
