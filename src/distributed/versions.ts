/**
 * The two versions a worker must share with the daemon before it runs a task: the harness (it loads the agent,
 * builds the sandbox and scores) and the benchmark (its tasks and scorer). A worker that differs refuses the job.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EXAMPLE_DIR } from "../benchmark/adapters/example.ts";
import type { Config } from "../config/schema.ts";
import type { Versions } from "./jobs.ts";

const HARNESS_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Names relative to `base`: the same files in two different directories hash the same. */
function hashFiles(base: string, files: string[]): string {
  const h = createHash("sha256");
  for (const file of files) h.update(file.slice(base.length)).update("\0").update(readFileSync(file)).update("\0");
  return h.digest("hex").slice(0, 12);
}

function listFiles(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full, keep));
    else if (keep(entry.name)) out.push(full);
  }
  return out.sort();
}

let harness: string | null = null;

/** package.json's version plus a hash of the harness's source, so two checkouts of one version still agree only when equal. */
export function harnessVersion(): string {
  if (harness) return harness;
  const pkg = JSON.parse(readFileSync(join(HARNESS_ROOT, "package.json"), "utf8")) as { version: string };
  const src = join(HARNESS_ROOT, "src");
  harness = `${pkg.version}+${hashFiles(
    src,
    listFiles(src, (n) => /\.(ts|mjs|js)$/.test(n)),
  )}`;
  return harness;
}

/** The benchmark's content: the example's folder, a local benchmark's tasks and scorer, or the command line. */
export function benchmarkVersion(config: Config, root: string): string {
  switch (config.benchmark) {
    case "example":
      return `example+${hashFiles(
        EXAMPLE_DIR,
        listFiles(EXAMPLE_DIR, (n) => !n.startsWith(".")),
      )}`;
    case "local": {
      const files = config.local ? [resolve(root, config.local.tasks), resolve(root, config.local.scorer)] : [];
      const h = createHash("sha256");
      for (const f of files) h.update(readFileSync(f)).update("\0");
      return `local+${h.digest("hex").slice(0, 12)}`;
    }
    case "command":
      // An external benchmark has no version the harness can read: the command line stands for it.
      return `command+${createHash("sha256")
        .update(config.command?.run ?? "")
        .digest("hex")
        .slice(0, 12)}`;
  }
}

export function versionsOf(config: Config, root: string): Versions {
  return { harness: harnessVersion(), benchmark: benchmarkVersion(config, root) };
}
