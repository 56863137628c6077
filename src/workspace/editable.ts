/**
 * What the coding model may change (config `editable`): the agent file and any patterns beside it, such as
 * `agent/prompts/*.md`. A pattern is a path relative to the experiment, where `*` matches within one folder
 * name, `**` across folders, `?` one character; every pattern lies inside the agent file's own folder (the
 * folder the sandbox gets). One matcher for all who ask: the coding model's tools, the file guard, the
 * hard-coding check, the runner's cache key, the commit and the candidates' copies.
 */
import { existsSync, lstatSync, readdirSync } from "node:fs";
import { join, posix } from "node:path";

/** The agent file first, then the other patterns, without repeats. */
export function editableSpecs(
  config: { agent_file?: string; editable?: readonly string[] },
  agentFile?: string,
): string[] {
  const agent = agentFile ?? config.agent_file ?? "agent/agent.ts";
  return [...new Set([agent, ...(config.editable ?? [])])];
}

export const isPattern = (spec: string): boolean => /[*?[]/.test(spec);

/** A pattern as a regular expression over a whole relative path. */
export function patternRegExp(spec: string): RegExp {
  let out = "";
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i]!;
    if (c === "*" && spec[i + 1] === "*") {
      // `**/` matches zero or more folders; a bare `**` anything at all.
      const slash = spec[i + 2] === "/";
      out += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

export function isEditable(rel: string, specs: readonly string[]): boolean {
  return specs.some((s) => (isPattern(s) ? patternRegExp(s).test(rel) : s === rel));
}

/** The agent's folder: what the sandbox gets, and where every editable pattern must lie. */
export const agentDir = (agentFile: string): string => posix.dirname(agentFile);

/** Why a pattern is refused (outside the agent's folder, or climbing out), or null. */
export function editableProblem(spec: string, agentFile: string): string | null {
  const dir = agentDir(agentFile);
  if (spec.startsWith("/") || spec.split("/").includes("..")) return "must be a relative path inside the experiment";
  if (dir !== "." && !spec.startsWith(`${dir}/`))
    return `must lie inside the agent's folder ${dir}/ (the folder the sandbox gets), e.g. ${dir}/prompts/*.md`;
  if (spec.split("/").some((part) => part === "node_modules" || part.startsWith(".")))
    return "must not name node_modules or a hidden folder";
  return null;
}

/** Folders never walked for editable files: dependencies and hidden folders. */
const SKIP = (name: string) => name === "node_modules" || name.startsWith(".");

/** The files under `root` the specs match, sorted (the agent's folder walked; symlinks not followed). */
export function listEditable(root: string, specs: readonly string[]): string[] {
  const out = new Set<string>();
  for (const s of specs) if (!isPattern(s) && existsSync(join(root, s))) out.add(s);
  const patterns = specs.filter(isPattern);
  if (patterns.length > 0) {
    const walk = (rel: string) => {
      const abs = rel === "" ? root : join(root, rel);
      if (!existsSync(abs)) return;
      for (const e of readdirSync(abs, { withFileTypes: true })) {
        if (SKIP(e.name)) continue;
        const child = rel === "" ? e.name : `${rel}/${e.name}`;
        if (lstatSync(join(root, child)).isSymbolicLink()) continue;
        if (e.isDirectory()) walk(child);
        else if (e.isFile() && isEditable(child, patterns)) out.add(child);
      }
    };
    for (const dir of new Set(patterns.map((p) => fixedPrefix(p)))) walk(dir);
  }
  return [...out].sort();
}

/** The folder a pattern's matches all lie under (its part before the first wildcard). */
export function fixedPrefix(spec: string): string {
  const parts = spec.split("/");
  const i = parts.findIndex(isPattern);
  return parts.slice(0, i < 0 ? parts.length - 1 : i).join("/");
}
