/**
 * Which of the experiment's packages are bound into its agent's sandbox: every node_modules its imports resolve
 * from (beside it, hoisted above it), what pnpm's links lead out to, the virtualenv `python:` names; a value
 * import of a package the experiment does not have is refused by name; and, as root, packages the sandbox's
 * user cannot read stop the start with one line.
 */
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { forbiddenImports } from "../../../src/benchmark/sealed/load-check.ts";
import { experimentPackages, packageBinds } from "../../../src/benchmark/sealed/packages.ts";
import { probeSandbox, sandboxSpec } from "../../../src/benchmark/sealed/sandbox.ts";
import { UserError } from "../../../src/errors.ts";
import { makeVenv } from "../../helpers/real-agents.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const pkg = (dir: string, name: string) => {
  mkdirSync(join(dir, name), { recursive: true });
  writeFileSync(join(dir, name, "package.json"), JSON.stringify({ name, version: "1.0.0" }));
};

describe("the experiment's packages", () => {
  it("binds every node_modules on the way up and what pnpm's links lead out to, each at its own path", () => {
    const repo = tempDir("ah-monorepo-");
    const exp = join(repo, "experiments", "support");
    pkg(join(repo, "node_modules"), "hoisted");
    // pnpm: a link into .pnpm (inside), and a workspace package linked from outside node_modules.
    const store = join(exp, "node_modules", ".pnpm", "openai@6.0.0", "node_modules");
    pkg(store, "openai");
    symlinkSync(join(store, "openai"), join(exp, "node_modules", "openai"));
    pkg(join(repo, "packages"), "tools");
    mkdirSync(join(exp, "node_modules", "@team"), { recursive: true });
    symlinkSync(join(repo, "packages", "tools"), join(exp, "node_modules", "@team", "tools"));
    mkdirSync(join(exp, "agent"));

    const found = experimentPackages(exp, "agent/agent.ts", null);
    expect(found.nodeModules).toEqual([join(exp, "node_modules"), join(repo, "node_modules")]);
    expect(found.linked).toEqual([join(repo, "packages", "tools")]);
    expect(packageBinds(found).map((b) => b.inside)).toEqual([
      join(exp, "node_modules"),
      join(repo, "node_modules"),
      join(repo, "packages", "tools"),
    ]);

    const source = `import OpenAI from "openai";\nimport { x } from "@team/tools/sub";\nimport y from "hoisted";\nimport z from "leftpad";\n`;
    expect(forbiddenImports(source, found.nodeModules)).toEqual([
      `line 4: value import of "leftpad", which the experiment's node_modules does not have; install it in the experiment (npm i leftpad), or use \`import type\``,
    ]);
  });

  it.skipIf(!haveTool("python3"))(
    "finds the virtualenv `python:` names, and names the key when it is not there",
    () => {
      const exp = tempDir("ah-venv-");
      const venv = makeVenv(exp, "teamclient", { "__init__.py": "" });
      const found = experimentPackages(exp, "agent/agent.py", ".venv/bin/python");
      expect(found.python).toEqual({ executable: join(venv, "bin", "python"), venv, base: null });
      expect(packageBinds(found).map((b) => b.inside)).toContain(venv);
      expect(() => experimentPackages(exp, "agent/agent.py", "venv2/bin/python")).toThrow(
        /^python: venv2\/bin\/python is not an interpreter .*python3 -m venv/,
      );
    },
  );

  it.skipIf(!haveTool("bwrap", "bubblewrap") || process.getuid?.() !== 0)(
    "as root, packages the sandbox's user cannot read stop the start in one line",
    () => {
      const exp = tempDir("ah-private-");
      // mkdtemp's 0700: the sandbox's user cannot pass through to the packages.
      chmodSync(exp, 0o700);
      pkg(join(exp, "node_modules"), "openai");
      const spec = sandboxSpec({}, "bwrap", exp);
      let error: unknown;
      try {
        probeSandbox(spec);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(/^the agent runs as nobody .*the experiment's packages/);
      expect((error as Error).message.split("\n")).toHaveLength(1);
      expect((error as Error).message).toContain(join(exp, "node_modules"));
    },
  );
});
