/**
 * Starts the agent's process sealed (DESIGN §1, the trust boundary): under bubblewrap it sees only
 * node and the system libraries, the harness's child code, node_modules and its own agent file, all
 * read-only; a private tmpfs at /tmp is its only writable place; it has its own network (none), pid,
 * ipc, uts and user namespaces, an empty environment and no terminal; it dies with the harness, and
 * everything it started or wrote goes with its namespaces when it is killed.
 *
 * `sandbox: none` runs the same child without the seal (still with an empty environment): the run is
 * marked unsealed wherever it is reported.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  accessSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";
import { UserError } from "../errors.ts";
import { writeFileAtomic } from "../workspace/files.ts";

export type SandboxMode = "bwrap" | "none";
/** The agent file's language: which runtime the agent process runs (child.ts, or the Python runtime). */
export type AgentLanguage = "ts" | "python";

export const languageOf = (agentFile: string): AgentLanguage => (agentFile.endsWith(".py") ? "python" : "ts");

const HARNESS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHILD_SOURCE = join(HARNESS_ROOT, "src", "benchmark", "child.ts");
/** Where the compiled child appears inside the sandbox. */
const CHILD_INSIDE = "/harness/child.mjs";
let childScript: string | null = null;

/**
 * child.ts as plain JavaScript, compiled once per harness process into a private directory: with the agent
 * compiled too, the agent process needs no TypeScript loader, which cost about 0.3 s of every start. Its one
 * import, the SDK, is named by its file so that the script runs from anywhere.
 */
export function childScriptPath(): string {
  if (childScript && existsSync(childScript)) return childScript;
  const { code } = transformSync(readFileSync(CHILD_SOURCE, "utf8"), {
    loader: "ts",
    format: "esm",
    target: `node${process.versions.node.split(".")[0]}`,
    sourcefile: CHILD_SOURCE,
    sourcemap: "inline",
  });
  const sdk = import.meta.resolve("@anthropic-ai/sdk");
  const js = code.replace(/from\s*["']@anthropic-ai\/sdk["']/, `from ${JSON.stringify(sdk)}`);
  if (js === code) throw new Error(`${CHILD_SOURCE}: its import of @anthropic-ai/sdk was not found after compiling`);
  const file = join(privateCacheDir(), `child-${createHash("sha256").update(js).digest("hex").slice(0, 16)}.mjs`);
  // Named by its content: harness processes of one version share the file, and nothing piles up.
  if (!existsSync(file) || readFileSync(file, "utf8") !== js) writeFileAtomic(file, js);
  childScript = file;
  return file;
}

/** $TMPDIR/auto-harness-<uid>, this user's alone: a directory another user made or can write is refused. */
function privateCacheDir(): string {
  const uid = process.getuid?.() ?? 0;
  const dir = join(tmpdir(), `auto-harness-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} is not a private directory of this user; remove it and start again`);
  }
  return dir;
}
/** The Python twin of child.ts (standard library only). */
export const PYTHON_RUNTIME = join(HARNESS_ROOT, "src", "benchmark", "python", "harness_runtime.py");

/**
 * The Python that runs Python agents: $AUTO_HARNESS_PYTHON, else the system's /usr/bin/python3 (inside
 * the sandbox only /usr is visible), else python3 on PATH (unsealed runs).
 */
export function pythonFor(mode: SandboxMode): string {
  const own = process.env.AUTO_HARNESS_PYTHON;
  if (own) return own;
  const system = "/usr/bin/python3";
  try {
    accessSync(system, constants.X_OK);
    return system;
  } catch {}
  if (mode === "bwrap") {
    throw new UserError(
      "CONFIG_INVALID",
      "a Python agent runs under /usr/bin/python3 inside the sandbox, and it is not installed: install the Debian package `python3` (or set AUTO_HARNESS_PYTHON to a Python under /usr)",
    );
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, "python3"), constants.X_OK);
      return join(dir, "python3");
    } catch {}
  }
  throw new UserError("CONFIG_INVALID", "a Python agent needs python3, and none is on PATH");
}

/** Where the agent's own directory appears inside the sandbox. */
const AGENT_DIR_INSIDE = "/agent";
/** stdin, stdout, stderr, then the IPC channel. */
const IPC_FD = 3;

/** The bwrap binary on PATH, or null. */
export function findBwrap(path = process.env.PATH ?? "/usr/bin:/bin"): string | null {
  for (const dir of path.split(delimiter)) {
    const candidate = join(dir, "bwrap");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

/** Why the configured sandbox cannot be built here (one line: the package and the opt-out), or null. */
export function sandboxProblem(config: { sandbox: SandboxMode; benchmark?: string }, path?: string): string | null {
  // A `command` benchmark runs the agent itself: this sandbox does not apply to it.
  if (config.sandbox !== "bwrap" || config.benchmark === "command" || findBwrap(path) !== null) return null;
  return "sandbox: bubblewrap (bwrap) is not installed, and the agent under test runs inside it: install the Debian package `bubblewrap`, or set `sandbox: none` in experiment_config.yaml to run the agent unsealed";
}

/** `run`, `prepare` and `benchmark` refuse to start when the sandbox cannot be built. */
export function assertSandboxReady(config: { sandbox: SandboxMode; benchmark?: string }): void {
  const problem = sandboxProblem(config);
  if (problem) throw new UserError("CONFIG_INVALID", problem);
}

export interface AgentProcess {
  child: ChildProcess;
  /** Host directory the agent file is copied into (read-only inside the sandbox). */
  agentDir: string;
  /** The path the child must load for a file named `name` in agentDir. */
  insidePath(name: string): string;
  /** Kills the process (and with bwrap everything it started) and removes its directory. */
  dispose(): void;
}

function bwrapArgs(agentDir: string, language: AgentLanguage = "ts"): string[] {
  const ro = (path: string, inside = path) => ["--ro-bind", realpathSync(path), inside];
  const node = realpathSync(process.execPath);
  const args = [
    "--unshare-all",
    "--die-with-parent",
    "--new-session",
    "--clearenv",
    "--setenv",
    "NODE_CHANNEL_FD",
    String(IPC_FD),
    "--setenv",
    "NODE_CHANNEL_SERIALIZATION_MODE",
    "json",
    "--hostname",
    "sandbox",
    ...ro("/usr"),
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
  ];
  if (!node.startsWith("/usr/")) args.push(...ro(node, process.execPath));
  args.push(...ro(join(HARNESS_ROOT, "node_modules"), join(HARNESS_ROOT, "node_modules")));
  if (language === "python") args.push(...ro(PYTHON_RUNTIME, PYTHON_RUNTIME));
  else args.push(...ro(childScriptPath(), CHILD_INSIDE));
  args.push(...ro(agentDir, AGENT_DIR_INSIDE), "--remount-ro", "/", "--chdir", "/tmp");
  return args;
}

/**
 * Starts a fresh agent process. It loads the SDK and tsx, then waits for `init`: a process may be
 * started before its agent file is known (a warm spare), since agentDir is bound, not copied.
 */
export function startAgentProcess(mode: SandboxMode, language: AgentLanguage = "ts"): AgentProcess {
  // -I: no PYTHON* variables, no user site, no script directory on sys.path; -B: no .pyc files.
  const command =
    language === "python"
      ? [pythonFor(mode), "-I", "-B", PYTHON_RUNTIME]
      : // Source maps: the agent's stack traces name the lines of its own TypeScript.
        [process.execPath, "--enable-source-maps", mode === "bwrap" ? CHILD_INSIDE : childScriptPath()];
  const agentDir = mkdtempSync(join(tmpdir(), "auto-harness-agent-"));
  const stdio: ("ignore" | "pipe" | "ipc")[] = ["ignore", "ignore", "pipe", "ipc"];
  let child: ChildProcess;
  if (mode === "bwrap") {
    const bwrap = findBwrap();
    if (!bwrap) assertSandboxReady({ sandbox: mode });
    child = spawn(bwrap!, [...bwrapArgs(agentDir, language), ...command], {
      env: {},
      stdio,
      serialization: "json",
    });
  } else {
    // No key and no tokens even unsealed: the child needs none of the harness's environment.
    child = spawn(command[0]!, command.slice(1), { env: {}, stdio, serialization: "json", cwd: agentDir });
  }
  // An unexpected end of the channel is reported through "exit"; the write error itself is noise.
  child.on("error", () => {});
  let disposed = false;
  return {
    child,
    agentDir,
    insidePath: (name) => (mode === "bwrap" ? `${AGENT_DIR_INSIDE}/${name}` : join(agentDir, name)),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      rmSync(agentDir, { recursive: true, force: true });
    },
  };
}

// One fresh process per mode, shared by every runner of this harness process: it has never run an
// agent, so handing it to a batch gives that batch nothing of another's.
const spares = new Map<string, AgentProcess>();
let sparesCleanedAtExit = false;

/** Ends the kept spares (and removes their directories). The harness does so when it exits. */
export function dropSpareAgentProcesses(): void {
  for (const spare of spares.values()) spare.dispose();
  spares.clear();
}

let shuttingDown = false;

/**
 * Shutdown has begun: the kept spares end and none is started again (a batch aborted by the shutdown restocks
 * in its `finally`, and a spare started then was seen outliving its harness).
 */
export function stopSpareAgentProcesses(): void {
  shuttingDown = true;
  dropSpareAgentProcesses();
}

function alive(p: AgentProcess): boolean {
  return p.child.exitCode === null && p.child.signalCode === null && p.child.connected;
}

/** A fresh agent process: the spare when one is ready, else a new one. */
export function takeAgentProcess(mode: SandboxMode, language: AgentLanguage = "ts"): AgentProcess {
  const key = `${mode}:${language}`;
  const spare = spares.get(key);
  spares.delete(key);
  if (spare && alive(spare)) {
    spare.child.ref();
    (spare.child.channel as { ref?: () => void } | undefined)?.ref?.();
    (spare.child.stderr as { ref?: () => void } | null)?.ref?.();
    return spare;
  }
  spare?.dispose();
  return startAgentProcess(mode, language);
}

/** Starts the spare for the next batch, so it does not wait for node, the SDK and tsx. */
export function keepSpareAgentProcess(mode: SandboxMode, language: AgentLanguage = "ts"): void {
  const key = `${mode}:${language}`;
  const current = spares.get(key);
  if (shuttingDown || (current && alive(current))) return;
  let spare: AgentProcess;
  try {
    spare = startAgentProcess(mode, language);
  } catch {
    return;
  }
  // A spare never keeps the harness alive; it dies with it.
  spare.child.unref();
  (spare.child.channel as { unref?: () => void } | undefined)?.unref?.();
  spare.child.stderr?.resume();
  (spare.child.stderr as { unref?: () => void } | null)?.unref?.();
  spares.set(key, spare);
  if (!sparesCleanedAtExit) {
    sparesCleanedAtExit = true;
    // A spare dies with the harness (--die-with-parent), but its directory would stay behind in /tmp.
    process.once("exit", dropSpareAgentProcesses);
  }
  spare.child.once("exit", () => {
    if (spares.get(key) === spare) spares.delete(key);
    spare.dispose();
  });
}
