/**
 * The project's one price table: what a model's tokens cost, for the coding agent's budget and for every
 * call the gateway meters. Prices are USD per million tokens, as the providers publish them; the config's
 * `prices` overrides or adds (by `provider/model` or bare model-name prefix).
 */

/** USD per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
}

export type PriceOverrides = Record<string, { input: number; output: number; cacheWrite?: number; cacheRead?: number }>;

export interface UsageCounts {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

function anthropic(input: number, output: number): ModelPrice {
  // Anthropic's 5-minute cache write is 1.25x input; a cache read is 0.1x input.
  return { input, output, cacheWrite: input * 1.25, cacheRead: input * 0.1 };
}

function openai(input: number, cachedInput: number | null, output: number): ModelPrice {
  // OpenAI caches by itself and charges nothing extra to write; models without a cached rate bill it as input.
  return { input, output, cacheWrite: input, cacheRead: cachedInput ?? input };
}

/** What a model no table or override prices is reserved and metered at: the dearest in the table. */
export const MOST_EXPENSIVE = anthropic(15, 75);

/** Ordered most specific first; the first matching pattern wins. */
const PRICE_TABLE: { match: RegExp; price: ModelPrice }[] = [
  // Opus 4.5 and later dropped to 5/25; "claude-opus-4-20250514" (a date, not a minor) stays 15/75.
  { match: /^claude-opus-4-([5-9]|\d{2})(-|$)/, price: anthropic(5, 25) },
  { match: /^claude-opus-4/, price: anthropic(15, 75) },
  { match: /^claude-sonnet-4/, price: anthropic(3, 15) },
  { match: /^claude-haiku-4/, price: anthropic(1, 5) },
  { match: /^claude-3-7-sonnet/, price: anthropic(3, 15) },
  { match: /^claude-3-5-sonnet/, price: anthropic(3, 15) },
  { match: /^claude-3-5-haiku/, price: anthropic(0.8, 4) },
  { match: /^claude-3-opus/, price: anthropic(15, 75) },
  { match: /^claude-3-haiku/, price: anthropic(0.25, 1.25) },
  // OpenAI's standard tier (not batch, not priority), under the long-context surcharge.
  { match: /^gpt-5\.5-pro/, price: openai(30, null, 180) },
  { match: /^gpt-5\.5(-|$)/, price: openai(5, 0.5, 30) },
  { match: /^gpt-5\.4-pro/, price: openai(30, null, 180) },
  { match: /^gpt-5\.4-mini/, price: openai(0.75, 0.075, 4.5) },
  { match: /^gpt-5\.4-nano/, price: openai(0.2, 0.02, 1.25) },
  { match: /^gpt-5\.4(-|$)/, price: openai(2.5, 0.25, 15) },
  { match: /^gpt-5\.2-pro/, price: openai(21, null, 168) },
  { match: /^gpt-5\.2(-|$)/, price: openai(1.75, 0.175, 14) },
  { match: /^gpt-5\.1(-|$)/, price: openai(1.25, 0.125, 10) },
  { match: /^gpt-5-pro/, price: openai(15, null, 120) },
  { match: /^gpt-5-mini/, price: openai(0.25, 0.025, 2) },
  { match: /^gpt-5-nano/, price: openai(0.05, 0.005, 0.4) },
  { match: /^gpt-5(-|$)/, price: openai(1.25, 0.125, 10) },
  { match: /^gpt-4\.1-mini/, price: openai(0.4, 0.1, 1.6) },
  { match: /^gpt-4\.1-nano/, price: openai(0.1, 0.025, 0.4) },
  { match: /^gpt-4\.1(-|$)/, price: openai(2, 0.5, 8) },
  { match: /^gpt-4o-mini/, price: openai(0.15, 0.075, 0.6) },
  { match: /^gpt-4o(-|$)/, price: openai(2.5, 1.25, 10) },
  { match: /^o4-mini/, price: openai(1.1, 0.275, 4.4) },
  { match: /^o3-mini/, price: openai(1.1, 0.55, 4.4) },
  { match: /^o3-pro/, price: openai(20, null, 80) },
  { match: /^o3(-|$)/, price: openai(2, 0.5, 8) },
  { match: /^o1-mini/, price: openai(1.1, 0.55, 4.4) },
  { match: /^o1(-|$)/, price: openai(15, 7.5, 60) },
];

function fromOverride(o: PriceOverrides[string]): ModelPrice {
  return {
    input: o.input,
    output: o.output,
    cacheWrite: o.cacheWrite ?? o.input * 1.25,
    cacheRead: o.cacheRead ?? o.input * 0.1,
  };
}

/**
 * The override for a model: the longest key that is a prefix of the bare model name or, for a key with a
 * `/`, of `provider/model` (so `local/` prices everything a provider serves).
 */
function overrideFor(model: string, provider: string, overrides: PriceOverrides): ModelPrice | null {
  const qualified = `${provider}/${model}`;
  const key = Object.keys(overrides)
    .filter((k) => model.startsWith(k) || (k.includes("/") && qualified.startsWith(k)))
    .sort((a, b) => b.length - a.length)[0];
  const o = key === undefined ? undefined : overrides[key];
  return o ? fromOverride(o) : null;
}

/**
 * The price of a model a provider serves, or null when neither the config nor the table knows it (preflight
 * refuses such a model before anything is paid). A routing prefix such as OpenRouter's `openai/gpt-5` is
 * looked up by its last segment.
 */
export function knownPrice(model: string, overrides: PriceOverrides = {}, provider = "anthropic"): ModelPrice | null {
  const own = overrideFor(model, provider, overrides);
  if (own) return own;
  const name = model.slice(model.lastIndexOf("/") + 1);
  return PRICE_TABLE.find((row) => row.match.test(name))?.price ?? null;
}

/** Price for an Anthropic model; overrides match by longest prefix; unknown models get the most expensive price. */
export function priceFor(model: string, overrides?: PriceOverrides): ModelPrice {
  return knownPrice(model, overrides) ?? MOST_EXPENSIVE;
}

export function costOf(p: ModelPrice, usage: UsageCounts): number {
  return (
    (usage.input_tokens * p.input +
      usage.output_tokens * p.output +
      (usage.cache_creation_input_tokens ?? 0) * p.cacheWrite +
      (usage.cache_read_input_tokens ?? 0) * p.cacheRead) /
    1_000_000
  );
}

export function costUsd(model: string, usage: UsageCounts, overrides?: PriceOverrides): number {
  return costOf(priceFor(model, overrides), usage);
}

/** Upper bound for a call before it is made: every input token at the dearer of input/cache-write, all of the cap out. */
export function worstCaseOf(p: ModelPrice, inputTokensEstimate: number, maxTokens: number): number {
  return (inputTokensEstimate * Math.max(p.input, p.cacheWrite) + maxTokens * p.output) / 1_000_000;
}

export function worstCaseCostUsd(
  model: string,
  inputTokensEstimate: number,
  maxTokens: number,
  overrides?: PriceOverrides,
): number {
  return worstCaseOf(priceFor(model, overrides), inputTokensEstimate, maxTokens);
}
