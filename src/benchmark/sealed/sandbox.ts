/**
 * How the agent's process is sealed (DESIGN §1, the trust boundary): under bubblewrap it sees only /usr,
 * node, its runtime and its own agent file, all read-only; a private tmpfs of a fixed size at /tmp is its
 * only writable place; it has its own user (none of whose ids is host root), network (none), pid, ipc and uts
 * namespaces, no capabilities and no way to make another user namespace, an empty environment and no
 * terminal; /proc/sys and the rest of /proc that could change the host are read-only (bubblewrap covers
 * them). It dies with the harness, and everything it started or wrote goes with its namespaces.
 *
 * `sandbox: none` runs the same runtime without the seal (still with an empty environment): the run is
 * marked unsealed wherever it is reported.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, realpathSync, rmSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { Config } from "../../config/schema.ts";
import { UserError } from "../../errors.ts";
import { type AgentLimits, describeLimits, limitsOf, rlimitPrefix, tmpfsBytes } from "./limits.ts";
import { type AgentPackages, experimentPackages, NO_PACKAGES, packageBinds } from "./packages.ts";
import { newAgentDir } from "./runtime-dir.ts";
import { dropRootPrefix, type SandboxUser, sandboxUserOf } from "./sandbox-user.ts";

export type SandboxMode = "bwrap" | "none";
/** The agent file's language: which runtime the agent process runs (child.ts, or the Python runtime). */
export type AgentLanguage = "ts" | "python";

export const languageOf = (agentFile: string): AgentLanguage => (agentFile.endsWith(".py") ? "python" : "ts");

/** Everything that decides how an agent process is started. */
export interface SandboxSpec {
  mode: SandboxMode;
  /** Who the agent runs as when the harness is root; null: the harness's own user (in a user namespace). */
  user: SandboxUser | null;
  limits: AgentLimits;
  /** The config's `python`, as written (relative to the experiment). */
  python?: string | null;
  /** The experiment's packages, bound read-only; absent until the experiment's directory is known. */
  packages?: AgentPackages;
}

type SpecConfig = Partial<Pick<Config, "sandbox" | "sandbox_user" | "sandbox_limits" | "python" | "agent_file">>;

/**
 * The spec of a config (a mode given apart overrides `sandbox`, as `--sandbox` or a test does); with the
 * experiment's directory, its packages too.
 */
export function sandboxSpec(config: SpecConfig = {}, mode?: SandboxMode, root?: string): SandboxSpec {
  const spec: SandboxSpec = {
    mode: mode ?? config.sandbox ?? "bwrap",
    user: sandboxUserOf(config),
    limits: limitsOf(config),
    python: config.python ?? null,
  };
  return root ? withPackages(spec, root, config.agent_file ?? "agent/agent.ts") : spec;
}

/** The spec with the packages of the experiment at `root` (agentFile relative to it), unless it has them. */
export function withPackages(spec: SandboxSpec, root: string, agentFile: string): SandboxSpec {
  if (spec.packages) return spec;
  return { ...spec, packages: experimentPackages(root, agentFile, spec.python ?? null) };
}

/** A bare mode means the configuration's defaults. */
export const specOf = (s: SandboxMode | SandboxSpec): SandboxSpec => (typeof s === "string" ? sandboxSpec({}, s) : s);

/** Where the agent's own directory and its runtime appear inside the sandbox. */
export const AGENT_DIR_INSIDE = "/agent";
const RUNTIME_INSIDE = "/harness";

/**
 * The Python that runs Python agents: $AUTO_HARNESS_PYTHON, else the system's /usr/bin/python3 (inside
 * the sandbox only /usr is visible), else python3 on PATH (unsealed runs).
 */
export function pythonFor(mode: SandboxMode, system = "/usr/bin/python3"): string {
  const own = process.env.AUTO_HARNESS_PYTHON;
  if (own) {
    if (executable(own)) return own;
    throw new UserError(
      "CONFIG_INVALID",
      `AUTO_HARNESS_PYTHON is ${own}, which is not an executable file: point it at a Python 3 interpreter, or unset it to use ${system}`,
    );
  }
  if (executable(system)) return system;
  if (mode === "bwrap") {
    throw new UserError(
      "CONFIG_INVALID",
      "a Python agent runs under /usr/bin/python3 inside the sandbox, and it is not installed: install the Debian package `python3` (or set AUTO_HARNESS_PYTHON to a Python under /usr)",
    );
  }
  const onPath = findOnPath("python3");
  if (onPath) return onPath;
  throw new UserError(
    "CONFIG_INVALID",
    "a Python agent needs python3, and none is on PATH: install Python 3, or set AUTO_HARNESS_PYTHON to an interpreter",
  );
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(name: string, path = process.env.PATH ?? "/usr/bin:/bin"): string | null {
  for (const dir of path.split(delimiter)) if (executable(join(dir, name))) return join(dir, name);
  return null;
}

/** The bwrap binary on PATH, or null. */
export const findBwrap = (path?: string): string | null => findOnPath("bwrap", path);

type SealedConfig = { sandbox: SandboxMode; benchmark?: string; command?: { sandbox?: boolean } | undefined };

/** Why the configured sandbox cannot be built here (one line: the field, the package and the opt-out), or null. */
export function sandboxProblem(config: SealedConfig, path?: string): string | null {
  if (findBwrap(path) !== null) return null;
  // A `command` benchmark runs the agent itself: `sandbox` does not apply to it, `command.sandbox` seals the command.
  if (config.benchmark === "command") {
    if (!config.command?.sandbox) return null;
    return "command.sandbox: bubblewrap (bwrap) is not installed, and `command.sandbox: true` runs the benchmark command inside it: install the Debian package `bubblewrap`, or set `sandbox: false` under `command` in experiment_config.yaml to run the command unsealed";
  }
  if (config.sandbox !== "bwrap") return null;
  return "sandbox: bubblewrap (bwrap) is not installed, and the agent under test runs inside it: install the Debian package `bubblewrap`, or set `sandbox: none` in experiment_config.yaml to run the agent unsealed";
}

/** `run`, `prepare` and `benchmark` refuse to start when the sandbox cannot be built (with the experiment's packages). */
export function assertSandboxReady(config: SealedConfig & SpecConfig, root?: string): void {
  const problem = sandboxProblem(config);
  if (problem) throw new UserError("CONFIG_INVALID", problem);
  if (config.sandbox === "bwrap" && config.benchmark !== "command") probeSandbox(sandboxSpec(config, undefined, root));
}

const probed = new Set<string>();

/**
 * Starts the sandbox once as the agent would be started, running node: as root the agent's user must reach
 * what is bound (a node under /root is out of its reach) and the kernel must let it make a user namespace.
 */
export function probeSandbox(spec: SandboxSpec): void {
  const key = JSON.stringify(spec);
  if (spec.mode !== "bwrap" || !spec.user || probed.has(key)) return;
  const agentDir = newAgentDir(spec.user.gid);
  try {
    const { file, args } = launchCommand(spec, [process.execPath, "-e", "0"], { agentDir, runtime: null });
    const r = spawnSync(file, args, { env: {}, stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
    const said = r.stderr?.toString("utf8").trim().split("\n").at(-1) ?? "";
    if (r.status === 0) {
      probed.add(key);
      return;
    }
    const packages = spec.packages && packageBinds(spec.packages).length > 0 ? ", the experiment's packages" : "";
    throw new UserError(
      "CONFIG_INVALID",
      `the agent runs as ${spec.user.name} (uid ${spec.user.uid}; sandbox_user) and its sandbox does not start: ${said || `exit ${r.status}`}; ` +
        `node, the temp dir${packages} and user namespaces must be open to that user (a node or an experiment under /root is not), or run the harness as an unprivileged user`,
    );
  } finally {
    rmSync(agentDir, { recursive: true, force: true });
  }
}

export interface Launch {
  /** The agent process's own directory on the host. */
  agentDir: string;
  /** The runtime file bound at /harness (null: none, for the probe). */
  runtime: string | null;
  /** The agent process's cgroup (cgroup v2 limits), null under rlimits. */
  cgroup?: string | null;
}

/** Arguments of bubblewrap: the view, the namespaces, the limits that are bubblewrap's to set. */
function bwrapArgs(spec: SandboxSpec, launch: Launch): string[] {
  const ro = (path: string, inside = path) => ["--ro-bind", realpathSync(path), inside];
  const node = realpathSync(process.execPath);
  const args = [
    "--unshare-all",
    "--unshare-user",
    // Another user namespace inside would give the agent capabilities over its own mounts.
    "--disable-userns",
    "--cap-drop",
    "ALL",
    "--die-with-parent",
    "--new-session",
    "--clearenv",
    "--hostname",
    "sandbox",
    ...ro("/usr"),
    ...["--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"],
    // A fresh procfs of its own pid namespace; bubblewrap binds /proc/sys, sysrq-trigger, irq and bus read-only.
    ...["--proc", "/proc", "--dev", "/dev"],
    ...["--size", String(tmpfsBytes(spec.limits)), "--tmpfs", "/tmp"],
  ];
  if (!node.startsWith("/usr/")) args.push(...ro(node, process.execPath));
  // The experiment's packages at their own paths, so a link resolved inside lands where it does outside.
  for (const bind of packageBinds(spec.packages ?? NO_PACKAGES)) args.push("--ro-bind", bind.source, bind.inside);
  for (const [name, value] of Object.entries(agentEnvironment(spec))) args.push("--setenv", name, value);
  if (launch.runtime) args.push(...ro(launch.runtime, `${RUNTIME_INSIDE}/${runtimeName(launch.runtime)}`));
  args.push(...ro(launch.agentDir, AGENT_DIR_INSIDE), "--remount-ro", "/", "--chdir", "/tmp");
  return args;
}

const runtimeName = (file: string): string => (file.endsWith(".py") ? "harness_runtime.py" : "child.mjs");

/** The agent process's environment: only where its imports resolve from (the rest its runtime sets). */
export function agentEnvironment(spec: SandboxSpec): Record<string, string> {
  const nodeModules = spec.packages?.nodeModules ?? [];
  return nodeModules.length > 0 ? { NODE_PATH: nodeModules.join(delimiter) } : {};
}

/** The runtime's command line as the agent process runs it (inside the sandbox, or unsealed). */
export function runtimeCommand(spec: SandboxSpec, language: AgentLanguage, runtime: string): string[] {
  const path = spec.mode === "bwrap" ? `${RUNTIME_INSIDE}/${runtimeName(runtime)}` : runtime;
  // -I: no PYTHON* variables, no user site, no script directory on sys.path (a virtualenv's packages stay); -B: no .pyc files.
  // Sealed, the runtime's endpoint has the sandbox's loopback to itself: a fixed port and placeholder key, the
  // same in every run. Unsealed it shares the host's, so it takes a free port and a key of its own.
  const seal = spec.mode === "bwrap" ? ["--sealed"] : [];
  if (language === "python") {
    return [spec.packages?.python?.executable ?? pythonFor(spec.mode), "-I", "-B", path, ...seal];
  }
  // Source maps: the agent's stack traces name the lines of its own TypeScript.
  return [process.execPath, "--enable-source-maps", path, ...seal];
}

/**
 * The whole command line of an agent process: its cgroup (cgroup v2), then dropping host root (as root),
 * then bubblewrap, then its rlimits, then the runtime. Unsealed, the runtime alone.
 */
export function launchCommand(spec: SandboxSpec, runtime: string[], launch: Launch): { file: string; args: string[] } {
  if (spec.mode !== "bwrap") return { file: runtime[0]!, args: runtime.slice(1) };
  const bwrap = findBwrap();
  if (!bwrap) throw new UserError("CONFIG_INVALID", sandboxProblem({ sandbox: "bwrap" })!);
  const line = [
    ...dropRootPrefix(spec.user),
    bwrap,
    ...bwrapArgs(spec, launch),
    "--",
    ...rlimitPrefix(spec.limits),
    ...runtime,
  ];
  // The shell joins the cgroup before anything it starts exists, then becomes the rest of the line.
  const cgroup = launch.cgroup
    ? ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', join(launch.cgroup, "cgroup.procs")]
    : [];
  const all = [...cgroup, ...line];
  return { file: all[0]!, args: all.slice(1) };
}

/** What `status` says of the seal: who the agent runs as, and the limits with the mechanism that enforces them. */
export function describeSeal(config: Partial<Pick<Config, "sandbox_user" | "sandbox_limits" | "per_task_timeout">>): {
  who: string;
  limits: string;
} {
  let who: string;
  let limits: string;
  try {
    const user = sandboxUserOf(config);
    who = user
      ? `bwrap as ${user.name} (uid ${user.uid}), no capabilities`
      : "bwrap as the harness's own user in its own user namespace, no capabilities";
  } catch (error) {
    who = `bwrap, but ${(error as Error).message}`;
  }
  try {
    limits = describeLimits(limitsOf(config), config.per_task_timeout ?? 300);
  } catch (error) {
    limits = (error as Error).message;
  }
  return { who, limits };
}
