/**
 * Any node_modules layout: a harness checkout whose node_modules is a symlink (a monorepo's hoisted one), or
 * whose packages are symlinks out of it (pnpm's), starts sealed agent processes. Both once failed with
 * ERR_MODULE_NOT_FOUND: the child's import of the SDK resolved to the real path, the bind was at the link.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const run = promisify(execFile);

/** A copy of the harness's sources beside a node_modules of the given layout. */
function checkout(layout: "symlinked" | "pnpm"): string {
  const dir = tempDir(`ah-layout-${layout}-`);
  cpSync(join(ROOT, "src"), join(dir, "src"), { recursive: true });
  cpSync(join(ROOT, "package.json"), join(dir, "package.json"));
  if (layout === "symlinked") symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  else {
    mkdirSync(join(dir, "node_modules"));
    for (const name of readdirSync(join(ROOT, "node_modules"))) {
      symlinkSync(join(ROOT, "node_modules", name), join(dir, "node_modules", name));
    }
  }
  writeFileSync(join(dir, "agent.ts"), "export default { run: async () => 'loaded' };\n");
  writeFileSync(
    join(dir, "check.ts"),
    `import { loadAgentOnce } from "./src/benchmark/sealed/load-check.ts";
process.stdout.write(JSON.stringify(await loadAgentOnce(${JSON.stringify(join(dir, "agent.ts"))}, 60_000, "bwrap")));
`,
  );
  return dir;
}

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("a harness with any node_modules layout", () => {
  it.each(["symlinked", "pnpm"] as const)("a %s node_modules starts and loads a sealed agent", async (layout) => {
    const dir = checkout(layout);
    const { stdout } = await run(process.execPath, ["--import", "tsx", join(dir, "check.ts")], {
      cwd: dir,
      timeout: 120_000,
    });
    expect(JSON.parse(stdout)).toEqual({ ok: true });
  });
});
