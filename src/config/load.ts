import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse, parseDocument, stringify } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../errors.ts";
import { editableProblem } from "../workspace/editable.ts";
import { AGENT_FILE } from "../workspace/paths.ts";
import { type Config, configSchema, modelRef, providersOf } from "./schema.ts";

export const DEFAULT_CONFIG_FILE = "experiment_config.yaml";

/** YAML as the config room reads it, for a config that is not ours yet (an original's, being adopted). */
export const parseYaml = (text: string): unknown => parse(text);

/** A config as YAML text, one value per line however long. */
export const yamlText = (value: unknown): string => stringify(value, { lineWidth: 0 });

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function closest(word: string, candidates: string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0] as number;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const temp = row[j] as number;
        row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = temp;
      }
    }
    return row[b.length] as number;
  };
  const best = candidates.map((c) => ({ c, d: distance(word, c) })).sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(2, Math.floor(word.length / 3)) ? best.c : undefined;
}

/** The keys of the mapping at `path` in the schema (`local` → tasks, scorer), through optional/default wrappers. */
function keysAt(path: readonly PropertyKey[]): string[] {
  type Node = { shape?: Record<string, unknown>; unwrap?: () => unknown } | undefined;
  const unwrap = (n: Node): Node => {
    let node = n;
    for (let i = 0; i < 5 && node && !node.shape && typeof node.unwrap === "function"; i++)
      node = node.unwrap() as Node;
    return node;
  };
  let node: Node = configSchema as unknown as Node;
  for (const part of path) node = unwrap(unwrap(node)?.shape?.[String(part)] as Node);
  const shape = unwrap(node)?.shape;
  return shape ? Object.keys(shape) : [];
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string[] {
  const path = issue.path.map(String).join(".");
  const where = path === "" ? "(top level)" : path;
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => {
      const known = keysAt(issue.path);
      const hint = closest(key, known);
      const full = path === "" ? key : `${path}.${key}`;
      return `${full}: unknown key${hint ? ` (did you mean "${hint}"?)` : `; remove it (known keys: ${known.join(", ")})`}`;
    });
  }
  let value: unknown = raw;
  for (const part of issue.path)
    value =
      value && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[part as PropertyKey] : undefined;
  return [`${where}: got ${show(value)}; ${issue.message}`];
}

/** Pure: raw parsed YAML → config or one message per problem (`path: got value; expected …`). */
export function validateConfig(raw: unknown): { config: Config | null; errors: string[] } {
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    return { config: null, errors: [`(top level): got ${show(raw)}; expected a mapping of keys to values`] };
  }
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    return { config: null, errors: parsed.error.issues.flatMap((issue) => describeIssue(issue, raw)) };
  }
  const config = parsed.data;
  const errors: string[] = [];
  if (config.benchmark === "local" && !config.local) {
    errors.push("local: got nothing; benchmark `local` needs `local: { tasks: <file.jsonl>, scorer: <module.ts> }`");
  }
  if (config.benchmark === "command" && !config.command) {
    errors.push("command: got nothing; benchmark `command` needs `command: { run: <shell command> }`");
  }
  if (config.executor === "bullmq" && !config.redis_url) {
    errors.push("redis_url: got nothing; executor `bullmq` needs `redis_url: redis://<host>:<port>`");
  }
  if (config.candidates > 1 && config.gate_rule !== "paired") {
    errors.push(
      `candidates: got ${config.candidates}; racing several candidates needs \`gate_rule: paired\` (the ${config.gate_rule} rule judges one); set candidates: 1 or gate_rule: paired`,
    );
  }
  config.editable.forEach((spec, i) => {
    const problem = editableProblem(spec, config.agent_file);
    if (problem) errors.push(`editable.${i}: got ${show(spec)}; ${problem}`);
  });
  const providers = providersOf(config);
  const refs: [string, string][] = [
    ["agent_model", config.agent_model],
    ...config.agent_models.map((m, i): [string, string] => [`agent_models.${i}`, m]),
  ];
  for (const [key, ref] of refs) {
    const { provider, model } = modelRef(ref);
    if (!Object.hasOwn(providers, provider)) {
      errors.push(
        `${key}: got ${show(ref)}; provider \`${provider}\` is not configured; add it under \`providers\` or use one of: ${Object.keys(providers).join(", ")}`,
      );
    } else if (model === "") {
      errors.push(`${key}: got ${show(ref)}; name the model after the provider, e.g. ${provider}/<model>`);
    }
  }
  return errors.length ? { config: null, errors } : { config, errors: [] };
}

/**
 * The experiment's agent file without validating the rest of the config (commands such as `record`
 * work on experiments whose config is not ours yet): its `agent_file` if it names one, else the default.
 */
export function agentFileIn(root: string, configFile = DEFAULT_CONFIG_FILE): string {
  const path = resolve(root, configFile);
  if (!existsSync(path)) return AGENT_FILE;
  const raw = parseDocument(readFileSync(path, "utf8")).toJS() as unknown;
  const named = raw && typeof raw === "object" ? (raw as { agent_file?: unknown }).agent_file : undefined;
  const checked = configSchema.shape.agent_file.safeParse(named);
  return checked.success ? checked.data : AGENT_FILE;
}

/** Pure: the config file's text → config or one message per problem (YAML syntax first, then the schema). */
export function parseConfigText(text: string): { config: Config | null; errors: string[] } {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    return {
      config: null,
      errors: doc.errors.map((e) => `line ${e.linePos?.[0]?.line ?? "?"}: not valid YAML (${e.code}); fix the syntax`),
    };
  }
  return validateConfig(doc.toJS());
}

/** Reads and validates the config file; throws ConfigError (exit 2) naming every problem. */
export function loadConfig(file: string): Config {
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new ConfigError([`file not found; create it (see README "Configuration") or pass --config <file>`], path);
  }
  const { config, errors } = parseConfigText(readFileSync(path, "utf8"));
  if (!config) throw new ConfigError(errors, path);
  return config;
}
