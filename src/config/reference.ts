import { z } from "zod";
import { configSchema } from "./schema.ts";

export const REFERENCE_START =
  "<!-- config-reference:start (generated from src/config/schema.ts by `npm run docs:config`) -->";
export const REFERENCE_END = "<!-- config-reference:end -->";

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  format?: string;
};

function typeOf(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(typeOf).join(" or ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(" / ");
  const base = Array.isArray(s.type) ? s.type.join(" or ") : (s.type ?? "any");
  if (base === "object" && s.properties) return "mapping";
  if (base === "object") return "mapping";
  const range: string[] = [];
  if (s.minimum !== undefined && s.minimum > Number.MIN_SAFE_INTEGER) range.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) range.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER) range.push(`≤ ${s.maximum}`);
  const kind = s.format === "date-time" ? "ISO-8601 time" : base;
  return range.length ? `${kind} ${range.join(", ")}` : kind;
}

function rows(props: Record<string, JsonSchema>, required: Set<string>, prefix = ""): string[] {
  return Object.entries(props).flatMap(([key, s]) => {
    const name = `\`${prefix}${key}\``;
    const def = s.default !== undefined ? `\`${JSON.stringify(s.default)}\`` : required.has(key) ? "required" : "—";
    const description = (s.description ?? "").replace(/\|/g, "\\|");
    const line = `| ${name} | ${typeOf(s).replace(/\|/g, "\\|")} | ${def} | ${description} |`;
    const nested = s.properties ? rows(s.properties, new Set(s.required ?? []), `${prefix}${key}.`) : [];
    return [line, ...nested];
  });
}

/** docs/configuration.md's reference, generated from the zod schema so the two cannot drift. */
export function configReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as JsonSchema & {
    required?: string[];
  };
  const required = new Set(schema.required ?? []);
  return [
    REFERENCE_START,
    "",
    "| key | type | default | what it does |",
    "| --- | --- | --- | --- |",
    ...rows(schema.properties ?? {}, required),
    "",
    REFERENCE_END,
  ].join("\n");
}

/** Replaces the generated block in a page's text. */
export function withReference(readme: string): string {
  const start = readme.indexOf(REFERENCE_START);
  const end = readme.indexOf(REFERENCE_END);
  if (start < 0 || end < 0) throw new Error("the page has no config-reference markers");
  return readme.slice(0, start) + configReference() + readme.slice(end + REFERENCE_END.length);
}
