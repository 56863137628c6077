/**
 * The lockfiles that pin the agent's own packages (npm, pnpm, yarn, bun; pip, uv, poetry, pdm, pipenv), pinned in
 * the journal when the baseline is measured (`prepare`, `rebaseline`). The packages are part of what every
 * score measured, so a lockfile changed between runs is refused at start: scores from before and after would
 * not compare. `rebaseline` measures the agent again with the new packages and pins them.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { experimentPackages } from "../benchmark/sealed/packages.ts";
import type { Config } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { sha256 } from "../journal/pins.ts";
import type { PinStore } from "../journal/stores.ts";

const PIN = "lockfiles";
const LOCKFILE =
  /^(package-lock\.json|npm-shrinkwrap\.json|pnpm-lock\.yaml|yarn\.lock|bun\.lockb?|requirements[\w.-]*\.txt|uv\.lock|poetry\.lock|Pipfile\.lock|pdm\.lock|pylock(\.[\w-]+)?\.toml)$/;

/** Lockfile → sha256 of its content: those in the experiment and beside each `node_modules` its agent resolves from. */
export function lockfilesOf(root: string, config: Pick<Config, "agent_file">): Record<string, string> {
  const dirs = new Set([root]);
  try {
    for (const dir of experimentPackages(root, config.agent_file, null).nodeModules) dirs.add(dirname(dir));
  } catch {
    // nothing to add: the experiment's own directory is still read
  }
  const found: Record<string, string> = {};
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => LOCKFILE.test(n)).sort()) {
      const file = join(dir, name);
      const shown = relative(root, file).startsWith("..") ? file : relative(root, file);
      try {
        found[shown] = sha256(readFileSync(file, "latin1"));
      } catch {
        // unreadable: as if absent
      }
    }
  }
  return found;
}

/** Pins the lockfiles as they are now; returns them. */
export function pinLockfiles(
  pins: Pick<PinStore, "pin">,
  root: string,
  config: Pick<Config, "agent_file">,
): Record<string, string> {
  const now = lockfilesOf(root, config);
  pins.pin(PIN, JSON.stringify(now));
  return now;
}

/**
 * One line naming each lockfile that changed since it was pinned, and the fix; null when none did. A journal
 * from before lockfiles were pinned has them pinned now (`pinnedNow`).
 */
export function lockfileChange(
  pins: Pick<PinStore, "pin" | "pinned">,
  root: string,
  config: Pick<Config, "agent_file">,
): { problem: string | null; pinnedNow: boolean } {
  const pinned = pins.pinned(PIN);
  if (!pinned) {
    pinLockfiles(pins, root, config);
    return { problem: null, pinnedNow: true };
  }
  const before = JSON.parse(pinned.content) as Record<string, string>;
  const now = lockfilesOf(root, config);
  const changed = [...new Set([...Object.keys(before), ...Object.keys(now)])]
    .sort()
    .filter((file) => before[file] !== now[file])
    .map((file) =>
      before[file] === undefined ? `${file} (new)` : now[file] === undefined ? `${file} (removed)` : file,
    );
  if (changed.length === 0) return { problem: null, pinnedNow: false };
  return {
    problem: `the agent's packages changed since they were pinned with the baseline: ${changed.join(", ")}; scores from before would not compare, so run \`auto-harness rebaseline\` to measure the baseline again and pin them (or restore the file)`,
    pinnedNow: false,
  };
}

/** `run` and `resume` refuse to start on changed lockfiles; a journal with none pinned gets them pinned now. */
export function refuseChangedLockfiles(
  pins: Pick<PinStore, "pin" | "pinned">,
  exp: { root: string; config: Pick<Config, "agent_file"> },
  log: { info(obj: object, msg: string): void },
): void {
  const { problem, pinnedNow } = lockfileChange(pins, exp.root, exp.config);
  if (problem) throw new UserError("CONFIG_INVALID", problem);
  if (pinnedNow) log.info({ pinned: PIN }, "the agent's lockfiles are pinned from now on (none were)");
}
