import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * CI sets AUTO_HARNESS_REQUIRE_TOOLS=1: there a missing system tool fails the test instead of skipping it,
 * so a green CI always means the sandbox, browser and queue tests really ran.
 */
export const TOOLS_REQUIRED = process.env.AUTO_HARNESS_REQUIRE_TOOLS === "1";

/** Absolute path of an executable on PATH (or the path itself when it is one), else null. */
export function findTool(name: string): string | null {
  const candidates = name.includes("/") ? [name] : (process.env.PATH ?? "").split(delimiter).map((d) => join(d, name));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Whether the tests that need `name` can run. Prints the reason once when they are skipped; throws when
 * CI requires the tool. Use as `describe.skipIf(!haveTool("bwrap", "bubblewrap"))(...)`.
 */
export function haveTool(name: string, debianPackage: string = name): boolean {
  if (findTool(name)) return true;
  const reason = `${name} is not installed (Debian package \`${debianPackage}\`): its tests are skipped`;
  if (TOOLS_REQUIRED)
    throw new Error(`${reason.replace("are skipped", "cannot be skipped")} (AUTO_HARNESS_REQUIRE_TOOLS=1)`);
  if (!warned.has(name)) {
    warned.add(name);
    process.stderr.write(`SKIP: ${reason}\n`);
  }
  return false;
}
const warned = new Set<string>();
