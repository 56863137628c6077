/**
 * Puts the agent file into a fresh agent process's directory. A TypeScript agent is compiled here, in
 * the harness, to the CommonJS module tsx would have made of it (its directory has no package.json),
 * with an inline source map: loading TypeScript inside the agent process costs about 130 ms per
 * process, because esbuild's synchronous API starts a new esbuild process for every call.
 */
import { createHash } from "node:crypto";
import { lstatSync } from "node:fs";
import { cp, readdir, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { transform } from "esbuild";
import type { AgentProcess } from "./agent-process.ts";

export type Placed = { ok: true; inside: string } | { ok: false; message: string };

/** The gate runs many one-task batches of the same two or three files. */
const compiled = new Map<string, Promise<{ code: string } | { error: string }>>();
const KEEP = 8;

function compile(source: Buffer, sourcefile: string): Promise<{ code: string } | { error: string }> {
  const key = createHash("sha256").update(sourcefile).update("\0").update(source).digest("hex");
  let result = compiled.get(key);
  if (!result) {
    result = transform(source.toString("utf8"), {
      loader: "ts",
      format: "cjs",
      target: `node${process.versions.node.split(".")[0]}`,
      sourcemap: "inline",
      sourcefile,
      logLevel: "silent",
    }).then(
      (r) => ({ code: r.code }),
      (error: unknown) => ({ error: describeBuildError(error) }),
    );
    compiled.set(key, result);
    if (compiled.size > KEEP) compiled.delete(compiled.keys().next().value!);
  }
  return result;
}

function describeBuildError(error: unknown): string {
  const errors = (error as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] })
    .errors;
  if (!errors?.length) return String((error as Error)?.message ?? error);
  return errors
    .slice(0, 5)
    .map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text))
    .join("\n");
}

/**
 * Writes the agent into the process's directory; `inside` is what the process loads. Messages name the
 * file by its path inside the sandbox (agentNames gives the names to map back to the operator's path).
 */
export async function placeAgent(proc: AgentProcess, agentFile: string, content: Buffer): Promise<Placed> {
  const [source, loaded] = agentNames(agentFile);
  await placeFolder(proc, agentFile, [source, loaded]);
  if (loaded === source) {
    await writeFile(`${proc.agentDir}/${loaded}`, content);
    return { ok: true, inside: proc.insidePath(loaded) };
  }
  const sourcePath = proc.insidePath(source);
  const built = await compile(content, sourcePath);
  if ("error" in built) return { ok: false, message: `cannot load ${sourcePath}: ${built.error}` };
  await writeFile(`${proc.agentDir}/${loaded}`, built.code);
  return { ok: true, inside: proc.insidePath(loaded) };
}

/**
 * The rest of the agent's folder beside it (its prompts, data, Python modules), as they are now: an agent of
 * several files finds them next to itself, read-only like itself. Dependencies and hidden entries stay out.
 */
async function placeFolder(proc: AgentProcess, agentFile: string, taken: readonly string[]): Promise<void> {
  const dir = dirname(agentFile);
  const skip = new Set([basename(agentFile), ...taken, "node_modules"]);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (skip.has(e.name) || e.name.startsWith(".") || !(e.isFile() || e.isDirectory())) continue;
    await cp(join(dir, e.name), join(proc.agentDir, e.name), {
      recursive: true,
      // A symlink could lead the agent anywhere the harness can read: copies only.
      filter: (src) =>
        !basename(src).startsWith(".") && basename(src) !== "node_modules" && !lstatSync(src).isSymbolicLink(),
    });
  }
}

/** [the agent's name in the process directory, the file the process loads]. */
export function agentNames(agentFile: string): [string, string] {
  const ext = extname(agentFile) || ".ts";
  const source = `agent${ext}`;
  return ext === ".py" ? [source, source] : [source, "agent.cjs"];
}

/** Puts the operator's path back where a message names the agent by its path inside the sandbox. */
export function outsideText(proc: AgentProcess, agentFile: string, text: string): string {
  let out = text;
  for (const name of new Set(agentNames(agentFile))) out = out.split(proc.insidePath(name)).join(agentFile);
  return out;
}
