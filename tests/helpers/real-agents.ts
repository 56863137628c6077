/**
 * Experiments whose agents are real teams' agents: their own packages (the real `openai` and
 * `@anthropic-ai/sdk` npm packages in the experiment's node_modules, npm's or pnpm's layout; a virtualenv made
 * by `python3 -m venv` holding a package the test writes), their own provider through the harness's gateway,
 * against the project's test LLM server behind a real key.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Responder, startTestLlmServer, type TestLlmServer } from "../../dev/llm-server/llm-server.ts";
import { type Experiment, makeExperiment } from "./benchmark-fixtures.ts";
import { filesContaining } from "./distributed.ts";

export const REPO = resolve(import.meta.dirname, "..", "..");
/** Does not look like a key, so only removal by value can catch it. */
export const UPSTREAM_KEY = "upstream-secret-5e8d1a7c93b2f0";
export const KEY_ENV = "AGENTS_TEST_PROVIDER_KEY";

export type Layout = "npm" | "pnpm";

/**
 * Installs packages of the harness's own node_modules into the experiment's: copied (npm's layout), or as
 * pnpm lays them out, each a link into `.pnpm/<name>@<version>/node_modules/<name>`, itself a link to the
 * store (here the harness's copy, outside the experiment).
 */
export function installPackages(root: string, layout: Layout, names: string[]): void {
  const modules = join(root, "node_modules");
  mkdirSync(modules, { recursive: true });
  for (const name of names) {
    const source = join(REPO, "node_modules", name);
    const version = JSON.parse(readFileSync(join(source, "package.json"), "utf8")).version as string;
    const at = join(modules, name);
    mkdirSync(join(at, ".."), { recursive: true });
    if (layout === "npm") {
      cpSync(source, at, { recursive: true, dereference: true });
      continue;
    }
    const store = join(modules, ".pnpm", `${name.replace("/", "+")}@${version}`, "node_modules", name);
    mkdirSync(join(store, ".."), { recursive: true });
    symlinkSync(source, store);
    symlinkSync(store, at);
  }
  writeFileSync(join(root, "package-lock.json"), JSON.stringify({ lockfileVersion: 3, packages: names }));
}

/** A virtualenv made the way an operator makes one, with a package written into its site-packages. */
export function makeVenv(root: string, pkg: string, files: Record<string, string>): string {
  const venv = join(root, ".venv");
  execFileSync("/usr/bin/python3", ["-m", "venv", "--without-pip", venv]);
  const lib = join(venv, "lib");
  const site = join(lib, readdirSync(lib).find((d) => d.startsWith("python"))!, "site-packages", pkg);
  mkdirSync(site, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(site, name), content);
  writeFileSync(join(root, "requirements.txt"), `${pkg}==1.0\n`);
  return venv;
}

export interface RealWorld {
  exp: Experiment;
  server: TestLlmServer;
  close(): Promise<void>;
}

/**
 * An experiment whose agent calls `openai/gpt-5-mini` (and may call `claude-sonnet-4-6`) through the gateway,
 * both providers the test server behind UPSTREAM_KEY. Its directory is open to the sandbox's user, as an
 * operator's experiment must be when the harness runs as root.
 */
export async function realWorld(o: {
  tasks: Record<string, unknown>[];
  responder: Responder;
  config?: Record<string, unknown>;
  agent?: string;
}): Promise<RealWorld> {
  const server = await startTestLlmServer({ apiKey: UPSTREAM_KEY, responder: o.responder });
  const exp = makeExperiment({
    tasks: o.tasks,
    agent: o.agent ?? "",
    baseURL: server.url,
    config: {
      agent_model: "openai/gpt-5-mini",
      agent_models: ["claude-sonnet-4-6"],
      providers: {
        openai: { format: "openai", base_url: `${server.url}/v1`, api_key_env: KEY_ENV },
        anthropic: { format: "anthropic", base_url: server.url, api_key_env: KEY_ENV },
      },
      ...o.config,
    },
  });
  chmodSync(exp.root, 0o755);
  return {
    exp,
    server,
    close: async () => {
      exp.cleanup();
      await server.close();
    },
  };
}

/** Files under `dir` (its own packages left out) holding any of the needles. */
export const filesHolding = (dir: string, needles: string[]): string[] =>
  filesContaining(dir, needles, ["node_modules", ".venv"]);
