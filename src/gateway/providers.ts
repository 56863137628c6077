/**
 * The providers the agent's calls go to, with their keys read from the harness's environment (and registered
 * as secrets at once), and the models the agent may call: `agent_model` and `agent_models`, each priced.
 */
import {
  type Config,
  type ModelRef,
  modelRef,
  type ProviderConfig,
  type ProviderFormat,
  providersOf,
} from "../config/schema.ts";
import { registerSecret } from "../secrets.ts";
import { knownPrice, type ModelPrice } from "./prices.ts";

export interface Provider {
  name: string;
  format: ProviderFormat;
  /** Without a trailing slash; the format's path is appended. */
  baseUrl: string;
  apiKey: string | null;
  apiKeyEnv: string | null;
  /** `anthropic-beta` values the agent may send. */
  betas: readonly string[];
}

export interface Target {
  /** `provider/model`, as the config names it. */
  ref: string;
  provider: Provider;
  /** The model name the provider knows. */
  model: string;
  price: ModelPrice;
}

/**
 * Betas that change neither where a request goes nor what it costs per token. Left out on purpose: server
 * tools, files, MCP, code execution, computer use, and the 1M context (priced apart past 200k tokens).
 */
export const DEFAULT_BETAS: readonly string[] = [
  "interleaved-thinking-2025-05-14",
  "fine-grained-tool-streaming-2025-05-14",
  "token-efficient-tools-2025-02-19",
  "output-128k-2025-02-19",
  "prompt-caching-2024-07-31",
];

export function resolveProvider(name: string, cfg: ProviderConfig, env: NodeJS.ProcessEnv): Provider {
  const fallback =
    cfg.format === "anthropic" ? env.ANTHROPIC_BASE_URL || "https://api.anthropic.com" : "https://api.openai.com/v1";
  const apiKey = (cfg.api_key_env && env[cfg.api_key_env]) || null;
  // The key never leaves in anything the harness writes, nor in a reply to the agent.
  registerSecret(apiKey);
  return {
    name,
    format: cfg.format,
    baseUrl: (cfg.base_url ?? fallback).replace(/\/+$/, ""),
    apiKey,
    apiKeyEnv: cfg.api_key_env,
    betas: cfg.betas ?? DEFAULT_BETAS,
  };
}

/** The refs the agent may call, `agent_model` first. */
export function agentModelRefs(config: Pick<Config, "agent_model" | "agent_models">): string[] {
  return [...new Set([config.agent_model, ...config.agent_models])];
}

export interface Targets {
  targets: Target[];
  /** Models neither the config nor the price table prices: preflight refuses them. */
  unpriced: ModelRef[];
}

export function agentTargets(
  config: Pick<Config, "agent_model" | "agent_models" | "providers" | "prices">,
  env: NodeJS.ProcessEnv,
): Targets {
  const configured = providersOf(config);
  const providers = new Map<string, Provider>();
  const targets: Target[] = [];
  const unpriced: ModelRef[] = [];
  for (const ref of agentModelRefs(config)) {
    const { provider: name, model } = modelRef(ref);
    const cfg = configured[name];
    if (!cfg) continue; // the config's own validation refuses an unknown provider
    const provider = providers.get(name) ?? resolveProvider(name, cfg, env);
    providers.set(name, provider);
    const price = knownPrice(model, config.prices, name);
    if (price) targets.push({ ref: `${name}/${model}`, provider, model, price });
    else unpriced.push({ provider: name, model });
  }
  return { targets, unpriced };
}

/**
 * The target a request's model names, in the format it came in: `provider/model` or the bare model name.
 * A refusal says which models this run may call, since the agent's author reads it in the trace.
 */
export function route(
  targets: readonly Target[],
  format: ProviderFormat,
  requested: string,
): { ok: true; target: Target } | { ok: false; reason: string } {
  const named = targets.filter((t) => t.ref === requested || t.model === requested);
  const target = named.find((t) => t.provider.format === format);
  if (target) return { ok: true, target };
  const elsewhere = named[0];
  if (elsewhere) {
    const paths = elsewhere.provider.format === "openai" ? "/v1/chat/completions or /v1/responses" : "/v1/messages";
    return {
      ok: false,
      reason: `model: \`${requested}\` is served in the ${elsewhere.provider.format} format; call ${paths}`,
    };
  }
  const allowed = targets.filter((t) => t.provider.format === format).map((t) => t.ref);
  return {
    ok: false,
    reason: `model: \`${requested}\` is not one this run may call (agent_model and agent_models in experiment_config.yaml); allowed here: ${allowed.join(", ") || "none in this format"}`,
  };
}

const ANTHROPIC_VERSION = /^\d{4}-\d{2}-\d{2}$/;

/** The headers sent upstream: the provider's key and the few headers the agent may choose, checked. */
export function upstreamHeaders(
  provider: Provider,
  incoming: Readonly<Record<string, string>>,
): { ok: true; headers: Record<string, string> } | { ok: false; reason: string } {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (incoming.accept) headers.accept = incoming.accept;
  if (provider.format === "openai") {
    if (provider.apiKey) headers.authorization = `Bearer ${provider.apiKey}`;
    return { ok: true, headers };
  }
  const version = incoming["anthropic-version"] ?? "2023-06-01";
  if (!ANTHROPIC_VERSION.test(version)) {
    return { ok: false, reason: `anthropic-version: got ${JSON.stringify(version)}; expected a date, e.g. 2023-06-01` };
  }
  headers["anthropic-version"] = version;
  const betas = (incoming["anthropic-beta"] ?? "")
    .split(",")
    .map((b) => b.trim())
    .filter(Boolean);
  const refused = betas.find((b) => !provider.betas.includes(b));
  if (refused !== undefined) {
    return {
      ok: false,
      reason: `anthropic-beta: \`${refused}\` is not allowed through the gateway (allowed: ${provider.betas.join(", ") || "none"}; the operator lists more under providers.${provider.name}.betas)`,
    };
  }
  if (betas.length) headers["anthropic-beta"] = betas.join(",");
  if (provider.apiKey) headers["x-api-key"] = provider.apiKey;
  return { ok: true, headers };
}
