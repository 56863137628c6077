/**
 * Does an agent file load? A static import rule, a type-check with tsc, and a real load in a child
 * process that verifies the export shape. The gate and the coding agent's type-check tool call this.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { outsideText, placeAgent } from "./agent-build.ts";
import { type AgentProcess, startAgentProcess } from "./agent-process.ts";
import type { ToChild } from "./protocol.ts";
import { compilePython } from "./python-check.ts";
import { languageOf, type SandboxMode, type SandboxSpec, specOf, withPackages } from "./sandbox.ts";

export type CheckResult = { ok: true } | { ok: false; message: string };

export interface CheckOptions {
  /** Experiment root; only used to shorten paths in messages. */
  root?: string;
  /** Skip tsc (the load is still checked). */
  typeCheck?: boolean;
  /** How the load is sealed (default bwrap with the default limits; the config's `sandbox`, user and limits). */
  sandbox?: SandboxMode | SandboxSpec;
  /** Upper bound for each of tsc and the load, in ms (default 60 s). */
  timeoutMs?: number;
}

const HARNESS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const require = createRequire(import.meta.url);

/**
 * What an agent file may import for its value: Node's built-ins, and the packages its experiment installed
 * (found in `nodeModules`, the experiment's own, bound into the sandbox). Type imports are erased at load.
 * Another file of the experiment is out of the sandbox's view. Returns one line per offending import.
 */
export function forbiddenImports(source: string, nodeModules: readonly string[] = []): string[] {
  const problems: string[] = [];
  const lines = source.split("\n");
  const statement = /^\s*(?:import|export)\s+(type\s+)?(?:[^'"]*?\sfrom\s+)?["']([^"']+)["']/;
  const dynamic = /\b(?:import|require)\s*\(\s*["']([^"']+)["']/g;
  const installed = (specifier: string) => isInstalled(specifier, nodeModules);
  lines.forEach((line, i) => {
    const m = statement.exec(line);
    if (m && !m[1] && !isAllowed(m[2]!, line, installed)) {
      problems.push(
        `line ${i + 1}: value import of "${m[2]}", which the experiment's node_modules does not have; install it in the experiment (npm i ${packageName(m[2]!)}), or use \`import type\``,
      );
    }
    for (const d of line.matchAll(dynamic)) {
      if (!d[1]!.startsWith("node:") && !installed(d[1]!)) {
        problems.push(`line ${i + 1}: dynamic import of "${d[1]}", which the experiment's node_modules does not have`);
      }
    }
  });
  return problems;
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`; null for a path. */
function packageName(specifier: string): string | null {
  if (specifier.startsWith(".") || specifier.startsWith("/")) return null;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

function isInstalled(specifier: string, nodeModules: readonly string[]): boolean {
  const name = packageName(specifier);
  return name !== null && nodeModules.some((dir) => existsSync(join(dir, name, "package.json")));
}

function isAllowed(specifier: string, line: string, installed: (specifier: string) => boolean): boolean {
  if (specifier.startsWith("node:") || installed(specifier)) return true;
  // `import { type A, type B } from "x"` is erased too.
  const named = /import\s*\{([^}]*)\}/.exec(line);
  return named !== null && named[1]!.split(",").every((part) => part.trim() === "" || /^type\s/.test(part.trim()));
}

function run(file: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolvePromise) => {
    execFile(file, args, { cwd, timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolvePromise({ code, output: `${stdout}${stderr}`.trim() || (error?.message ?? "") });
    });
  });
}

/** tsc against a temp tsconfig that resolves the SDK and Node types from the harness's own node_modules. */
export async function typeCheckAgent(agentFile: string, timeoutMs = 60_000): Promise<CheckResult> {
  const dir = await mkdtemp(join(tmpdir(), "auto-harness-check-"));
  try {
    const sdkTypes = require.resolve("@anthropic-ai/sdk").replace(/\.(c?js|mjs)$/, ".d.ts");
    const tsconfig = {
      compilerOptions: {
        target: "ES2023",
        lib: ["ES2023", "DOM"],
        module: "preserve",
        moduleResolution: "bundler",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        allowImportingTsExtensions: true,
        types: ["node"],
        typeRoots: [join(HARNESS_ROOT, "node_modules", "@types")],
        paths: {
          "@anthropic-ai/sdk": [sdkTypes],
          "@anthropic-ai/sdk/*": [join(dirname(sdkTypes), "*")],
        },
      },
      files: [resolve(agentFile)],
    };
    const configFile = join(dir, "tsconfig.json");
    writeFileSync(configFile, JSON.stringify(tsconfig, null, 2));
    const tsc = join(HARNESS_ROOT, "node_modules", "typescript", "bin", "tsc");
    const { code, output } = await run(
      process.execPath,
      [tsc, "-p", configFile, "--pretty", "false"],
      dirname(resolve(agentFile)),
      timeoutMs,
    );
    if (code === 0) return { ok: true };
    return { ok: false, message: `type errors in the agent:\n${output}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Loads the agent in a sealed child process exactly as the runner does, and checks its default export. */
export function loadAgentOnce(
  agentFile: string,
  timeoutMs = 60_000,
  sandbox: SandboxMode | SandboxSpec = "bwrap",
): Promise<CheckResult> {
  return new Promise((resolvePromise) => {
    let proc: AgentProcess;
    try {
      proc = startAgentProcess(sandbox, languageOf(agentFile));
    } catch (error) {
      resolvePromise({ ok: false, message: (error as Error).message });
      return;
    }
    const child = proc.child;
    const outside = (text: string) => outsideText(proc, resolve(agentFile), text);
    let stderr = "";
    let settled = false;
    const done = (result: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.dispose();
      resolvePromise(result);
    };
    const timer = setTimeout(
      () => done({ ok: false, message: `loading the agent took longer than ${timeoutMs / 1000}s` }),
      timeoutMs,
    );
    child.stderr?.on("data", (c: Buffer) => {
      stderr = (stderr + c.toString("utf8")).slice(-4000);
    });
    proc.onMessage((m) => {
      if (m.type === "ready") done({ ok: true });
      else if (m.type === "load-failed") done({ ok: false, message: outside(m.message) });
    });
    proc.onBroken((error) => done({ ok: false, message: `${error.message} while loading` }));
    child.on("exit", (code, signal) =>
      done({
        ok: false,
        message: outside(`the agent process exited while loading (code ${code}, signal ${signal}) ${stderr}`),
      }),
    );
    let content: Buffer;
    try {
      content = readFileSync(agentFile);
    } catch (error) {
      done({ ok: false, message: `cannot read ${agentFile}: ${(error as Error).message}` });
      return;
    }
    placeAgent(proc, agentFile, content).then(
      (placed) => {
        if (!placed.ok) return done({ ok: false, message: outside(placed.message) });
        const init: ToChild = {
          type: "init",
          agentFile: placed.inside,
          model: "load-check",
          maxRetries: 0,
          heartbeatMs: 60_000,
        };
        proc.send(init);
      },
      (error: unknown) => done({ ok: false, message: `cannot place the agent: ${(error as Error).message}` }),
    );
  });
}

/** The spec with the experiment's packages, when the experiment is known (`root`). */
function specFor(agentFile: string, opts: CheckOptions): SandboxSpec {
  const spec = specOf(opts.sandbox ?? "bwrap");
  if (!opts.root) return spec;
  // An incumbent's copy may live outside the experiment: its imports resolve as the agent file's would.
  const rel = relative(opts.root, resolve(agentFile));
  return withPackages(spec, opts.root, rel.startsWith("..") || isAbsolute(rel) ? "agent/agent.ts" : rel);
}

/** The checks that need no load: the import rule, then tsc (unless `typeCheck: false`); Python is compiled. */
export async function checkAgentStatic(agentFile: string, opts: CheckOptions = {}): Promise<CheckResult> {
  if (languageOf(agentFile) === "python") return shorten(await compilePython(agentFile, opts.timeoutMs), opts.root);
  let source: string;
  try {
    source = readFileSync(agentFile, "utf8");
  } catch (error) {
    return { ok: false, message: `cannot read ${agentFile}: ${(error as Error).message}` };
  }
  let nodeModules: string[];
  try {
    nodeModules = specFor(agentFile, opts).packages?.nodeModules ?? [];
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
  const imports = forbiddenImports(source, nodeModules);
  if (imports.length > 0) return shorten({ ok: false, message: `${agentFile}:\n${imports.join("\n")}` }, opts.root);
  if (opts.typeCheck ?? true) return shorten(await typeCheckAgent(agentFile, opts.timeoutMs ?? 60_000), opts.root);
  return { ok: true };
}

/** The whole check: import rule, tsc, then a real load. The first failure's message is returned. */
export async function checkAgent(agentFile: string, opts: CheckOptions = {}): Promise<CheckResult> {
  const first = await checkAgentStatic(agentFile, opts);
  if (!first.ok) return first;
  let spec: SandboxSpec;
  try {
    spec = specFor(agentFile, opts);
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
  return shorten(await loadAgentOnce(agentFile, opts.timeoutMs ?? 60_000, spec), opts.root);
}

function shorten(result: CheckResult, root: string | undefined): CheckResult {
  if (result.ok || !root) return result;
  return { ok: false, message: result.message.split(`${resolve(root)}/`).join("") };
}
