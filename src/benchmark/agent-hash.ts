/** An agent's cache key: the hash the journal keys its task results by. */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { listEditable } from "../workspace/editable.ts";

export function agentHashOf(content: string | Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/**
 * The cache key of an agent: its file's hash, or, when other files are editable (config `editable`), the hash
 * of them all, name and content, so a change to a prompt file alone is a new agent too.
 */
export function agentBundleHash(agentFile: string, agentRel: string, specs: readonly string[]): string {
  const content = readFileSync(agentFile);
  if (specs.length <= 1 || !agentFile.endsWith(agentRel)) return agentHashOf(content);
  const root = agentFile.slice(0, agentFile.length - agentRel.length);
  const others = listEditable(root, specs).filter((f) => f !== agentRel);
  if (others.length === 0) return agentHashOf(content);
  const hash = createHash("sha256").update(content);
  for (const f of others) hash.update(`\u0000${f}\u0000`).update(readFileSync(join(root, f)));
  return hash.digest("hex");
}
