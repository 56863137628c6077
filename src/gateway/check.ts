/**
 * The start-up check of an OpenAI-format provider, free of charge: its model list answers whether the base URL,
 * the key and the model names are right, before the first paid call finds out.
 */
import type { Provider } from "./providers.ts";

function code(error: unknown): string {
  let e = error as { code?: unknown; cause?: unknown; name?: unknown } | null | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === "string") return e.code;
    if (e.name === "TimeoutError") return "timeout";
    e = e.cause as typeof e;
  }
  return "no answer";
}

/** null when the provider lists every model; otherwise one line naming the key of experiment_config.yaml to fix. */
export async function checkOpenaiProvider(
  provider: Provider,
  models: readonly string[],
  timeoutMs = 20_000,
): Promise<string | null> {
  const where = `providers.${provider.name}`;
  let res: Response;
  try {
    res = await fetch(`${provider.baseUrl}/models`, {
      headers: provider.apiKey ? { authorization: `Bearer ${provider.apiKey}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    return `cannot reach ${where}.base_url ${provider.baseUrl} (${code(error)}); check the URL and that the server is running`;
  }
  if (res.status === 401 || res.status === 403) {
    const key = provider.apiKeyEnv ? `the key in ${provider.apiKeyEnv}` : "a request without a key";
    return `${provider.baseUrl} refused ${key} (HTTP ${res.status}); check ${where}.api_key_env`;
  }
  if (res.status === 404 && !/\/v1$/.test(provider.baseUrl)) {
    return `${provider.baseUrl}/models answered 404; an OpenAI-compatible base URL usually ends in /v1 (${where}.base_url)`;
  }
  // A rate limit or an overloaded server means the endpoint is there; the calls' own handling covers the rest.
  if (res.status === 408 || res.status === 429 || res.status >= 500) return null;
  if (!res.ok) return `${provider.baseUrl}/models answered HTTP ${res.status}; check ${where}.base_url`;
  const body = (await res.json().catch(() => null)) as { data?: unknown } | null;
  if (!Array.isArray(body?.data)) return null; // lists nothing readable: the first call will tell
  const ids = body.data
    .map((m) => (m as { id?: unknown } | null)?.id)
    .filter((id): id is string => typeof id === "string");
  const missing = models.find((m) => !ids.includes(m));
  if (missing === undefined) return null;
  const shown = ids.slice(0, 12).join(", ") + (ids.length > 12 ? ", …" : "");
  return `${where} (${provider.baseUrl}) does not serve model \`${missing}\` (it lists: ${shown || "nothing"}); check agent_model and agent_models in experiment_config.yaml`;
}
