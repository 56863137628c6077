/**
 * The `command` adapter: runs any external benchmark CLI through the shell. Contract (README):
 *   HARNESS_SPLIT        train | test | all
 *   HARNESS_TASK_IDS     comma-separated ids; empty = the whole split
 *   HARNESS_AGENT_FILE   absolute path of agent/agent.ts
 *   HARNESS_RESULTS_FILE where the command writes {"results": {"<id>": reward | null}}
 *   HARNESS_TRACES_DIR   train only: the command may write <dir>/<task_id>/… there
 *   HARNESS_LIST_ONLY    "1" when the harness only needs the task ids (a command may skip the work then)
 *   HARNESS_AGENT_MODEL, HARNESS_MAX_CONCURRENCY, HARNESS_TASK_TIMEOUT  the config's agent_model,
 *                        max_concurrency and per_task_timeout, for wrappers that hand them on
 *   HARNESS_ROOT         the harness's directory (its node_modules: tsx and the SDK, for a command in Node)
 *   OPENAI_BASE_URL, OPENAI_API_BASE, ANTHROPIC_BASE_URL, and OPENAI_API_KEY/ANTHROPIC_API_KEY holding the run's
 *                        token: the run's gateway, which meters every call; no provider key is in the environment
 * The task ids are the keys the command returns for HARNESS_SPLIT=all. A non-zero exit or an unreadable
 * results file is an infrastructure error; the stderr tail is logged for train only (test output stays private).
 */
import { type SpawnOptions, spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { commandEnvironment, type LoopbackEndpoint } from "../../gateway/endpoint.ts";
import type { Logger } from "../../log.ts";
import { redact, SECRET_ENV } from "../../secrets.ts";
import { InfraFailure } from "../failure.ts";
import { relayedCommand } from "../sealed/command-relay.ts";
import { handOver, NO_CAPABILITIES, sealedCommandLine } from "../sealed/command-seal.ts";
import { type SandboxUser, sandboxUserOf } from "../sealed/sandbox-user.ts";
import type { Reward } from "../types.ts";
import { keeperArgs } from "./group-keeper.ts";
import type { CommandAdapter, CommandRunRequest, ProcessGroupTracker } from "./types.ts";

/** The harness's own directory. */
const HARNESS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

const resultsSchema = z.object({ results: z.record(z.string(), z.number().min(0).max(1).nullable()) });

export interface CommandAdapterOptions {
  command: string;
  /** Seconds one invocation may take. */
  timeoutS: number;
  cwd: string;
  log: Logger;
  /** Config values handed on as HARNESS_AGENT_MODEL, HARNESS_MAX_CONCURRENCY, HARNESS_TASK_TIMEOUT. */
  settings?: { agentModel: string; maxConcurrency: number; taskTimeoutS: number };
  /** Run the command under bubblewrap (`command.sandbox`). */
  sandbox?: CommandSandbox;
  /** Journals each command's process group, so it is killed with the daemon or reaped after a SIGKILL. */
  groups?: ProcessGroupTracker;
  /** The providers' key variables (`api_key_env`): never in the command's environment. */
  secretEnv?: string[];
}

export interface CommandSandbox {
  /** Keep the host's network (the benchmark's own model calls need it). */
  network: boolean;
  /** Absolute folders the command may write besides its results and traces folders. */
  writable: string[];
  /** Who the command runs as when the harness is root (default: `sandbox_user`'s default); never root. */
  user?: SandboxUser | null;
}

/**
 * The bubblewrap view of a sandboxed command: every file read-only (the experiment, the agent file, the
 * harness), /tmp private, the results and traces folders (and the configured ones) writable, its own pid
 * namespace so nothing outlives it, the network kept unless turned off. The command runs the agent itself,
 * so this is as far as the harness can seal it.
 */
export function commandSandboxArgs(o: {
  sandbox: CommandSandbox;
  writable: string[];
  cwd: string;
  command: string;
  readable?: string[];
  /** Without a network: the relay that carries the sandbox's loopback port to the gateway's unix socket. */
  relay?: { port: number; socket: string } | null;
}): string[] {
  const binds = [...o.writable, ...o.sandbox.writable].flatMap((dir) => ["--bind", dir, dir]);
  const shell = ["/bin/sh", "-c", o.command];
  const argv = o.relay ? relayedCommand(o.relay.port, o.relay.socket, shell) : shell;
  // The private /tmp would hide an experiment (or the harness) that lives under it: those come back read-only.
  const underTmp = [o.cwd, ...(o.readable ?? []), ...(o.relay ? [argv[1]!] : [])].filter((p) => p.startsWith("/tmp/"));
  const reshown = underTmp.flatMap((dir) => ["--ro-bind", dir, dir]);
  return [
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--tmpfs",
    "/tmp",
    ...reshown,
    ...binds,
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    ...NO_CAPABILITIES,
    ...(o.sandbox.network ? [] : ["--unshare-net"]),
    "--die-with-parent",
    "--chdir",
    o.cwd,
    ...argv,
  ];
}

interface Invocation {
  split: "train" | "test" | "all";
  taskIds: string[];
  agentFile: string;
  tracesDir: string | null;
  listOnly?: boolean;
  signal?: AbortSignal;
  /** The run's gateway: the command's model calls go there, with its token for their only key. */
  gateway?: LoopbackEndpoint;
}

/** The command's environment: the harness's, less every provider key, plus the gateway's base URLs and token. */
function baseEnvironment(opts: CommandAdapterOptions, gateway: LoopbackEndpoint | undefined): NodeJS.ProcessEnv {
  const keys = opts.secretEnv ?? [];
  if (gateway) return commandEnvironment(process.env, gateway, keys);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...SECRET_ENV, ...keys]) delete env[name];
  return env;
}

export function createCommandAdapter(opts: CommandAdapterOptions): CommandAdapter {
  let listed: Promise<string[]> | null = null;

  async function invoke(inv: Invocation): Promise<Record<string, Reward>> {
    const dir = await mkdtemp(join(tmpdir(), "auto-harness-cmd-"));
    const resultsFile = join(dir, "results.json");
    try {
      const env: NodeJS.ProcessEnv = {
        ...baseEnvironment(opts, inv.gateway),
        HARNESS_SPLIT: inv.split,
        HARNESS_TASK_IDS: inv.taskIds.join(","),
        HARNESS_AGENT_FILE: inv.agentFile,
        HARNESS_RESULTS_FILE: resultsFile,
        HARNESS_LIST_ONLY: inv.listOnly ? "1" : "0",
        ...(opts.settings
          ? {
              HARNESS_AGENT_MODEL: opts.settings.agentModel,
              HARNESS_MAX_CONCURRENCY: String(opts.settings.maxConcurrency),
              HARNESS_TASK_TIMEOUT: String(opts.settings.taskTimeoutS),
              HARNESS_ROOT,
            }
          : {}),
      };
      delete env.HARNESS_TRACES_DIR;
      if (inv.tracesDir) env.HARNESS_TRACES_DIR = inv.tracesDir;
      // A folder bound into the sandbox must exist, and (as root) belong to the user the command runs as.
      if (opts.sandbox) {
        const writable = [dir, ...[inv.tracesDir, ...opts.sandbox.writable].filter((d): d is string => !!d)];
        for (const d of writable) mkdirSync(d, { recursive: true });
        handOver(writable, commandUser(opts.sandbox));
      }
      // Sandboxed without a network, the command reaches the gateway through a relay and a unix socket.
      let relay: { port: number; socket: string } | null = null;
      if (opts.sandbox && !opts.sandbox.network && inv.gateway) {
        relay = { port: inv.gateway.port, socket: join(dir, "gateway.sock") };
        await inv.gateway.listenUnix(relay.socket);
      }
      const { code, signal, stderrTail, timedOut } = await runShell(opts.command, {
        ...(opts.sandbox
          ? {
              sandboxArgs: commandSandboxArgs({
                sandbox: opts.sandbox,
                writable: [dir, ...(inv.tracesDir ? [inv.tracesDir] : [])],
                cwd: opts.cwd,
                command: opts.command,
                readable: [HARNESS_ROOT, ...(inv.agentFile ? [inv.agentFile] : [])],
                relay,
              }),
            }
          : {}),
        ...(opts.sandbox ? { user: commandUser(opts.sandbox) } : {}),
        ...(opts.groups ? { groups: opts.groups } : {}),
        cwd: opts.cwd,
        env,
        timeoutMs: opts.timeoutS * 1000,
        ...(inv.signal ? { signal: inv.signal } : {}),
      });
      const fail = (why: string, infraClass = "command failed"): never => {
        // A test run's stderr could carry task content: only train gets it in the log.
        opts.log.warn(
          inv.split === "test" ? { code, signal } : { code, signal, stderrTail },
          `benchmark command failed: ${why}`,
        );
        // Train and list calls show what the command said; a test run's stderr stays private.
        const said = inv.split === "test" ? "" : tailOf(stderrTail);
        const message = `benchmark command failed: ${why}${said ? `; its stderr ends:\n${said}` : ""}`;
        if (code === 127) throw new ProgramNotFound(said ? missingProgram(stderrTail) : null, message);
        throw new InfraFailure(infraClass, message);
      };
      if (timedOut) fail(`it ran longer than ${opts.timeoutS}s`, "command timed out");
      if (code !== 0) fail(`exit code ${code}${signal ? ` (signal ${signal})` : ""}`, `command exited ${code}`);
      let parsed: z.infer<typeof resultsSchema>;
      try {
        const check = resultsSchema.safeParse(JSON.parse(readFileSync(resultsFile, "utf8")));
        if (!check.success) return fail(`results file: ${check.error.issues[0]?.message ?? "invalid"}`);
        parsed = check.data;
      } catch (error) {
        return fail(`cannot read its results file: ${(error as Error).message}`);
      }
      return parsed.results;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  return {
    kind: "command",
    name: "command",
    listTasks: () => {
      listed ??= invoke({ split: "all", taskIds: [], agentFile: "", tracesDir: null, listOnly: true })
        .then((r) => Object.keys(r))
        .catch((error: unknown) => {
          listed = null;
          throw error;
        });
      return listed;
    },
    runTasks: (req: CommandRunRequest) =>
      invoke({
        split: req.split,
        taskIds: req.taskIds,
        agentFile: req.agentFile,
        tracesDir: req.tracesDir,
        ...(req.signal ? { signal: req.signal } : {}),
        ...(req.gateway ? { gateway: req.gateway } : {}),
      }),
  };
}

const commandUser = (sandbox: CommandSandbox): SandboxUser | null =>
  sandbox.user === undefined ? sandboxUserOf({}) : sandbox.user;
/** Words a shell runs itself, or that wrap another command: the program is not what they name. */
const SHELL_WORDS = new Set(
  [
    "cd",
    "exec",
    "export",
    "eval",
    "set",
    "source",
    ".",
    "if",
    "for",
    "while",
    "until",
    "case",
    "{",
    "!",
    "time",
  ].concat(["command", "nohup", "nice", "timeout", "sudo", "true", ":"]),
);

/**
 * The program `command.run` starts, when it can be told without running it: the first word after any VAR=value
 * assignments, unless the shell itself runs it or it is built from quotes, variables or globs.
 */
export function commandProgram(run: string): string | null {
  const words = run.trim().split(/\s+/);
  let i = 0;
  while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=\S*$/.test(words[i] as string)) i++;
  const word = words[i];
  if (!word || SHELL_WORDS.has(word) || /[`$'"\\(){};|&<>*?~[\]]/.test(word)) return null;
  return word;
}

/**
 * Why `command.run`'s program cannot start (it is missing, or not executable), or null: every task would
 * otherwise fail as an infrastructure error, hours into a night. Relative paths are from the experiment.
 */
export function commandProblem(run: string, root: string, path = process.env.PATH ?? ""): string | null {
  const program = commandProgram(run);
  if (program === null) return null;
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (program.includes("/")) {
    const file = resolve(root, program);
    if (!existsSync(file))
      return `command.run: \`${program}\` does not exist (${file}); fix command.run in experiment_config.yaml`;
    if (!executable(file))
      return `command.run: \`${program}\` is not executable; \`chmod +x ${file}\`, or run it through its interpreter (e.g. \`sh ${program}\`)`;
    return null;
  }
  if (path.split(delimiter).some((dir) => dir !== "" && executable(join(dir, program)))) return null;
  return `command.run: \`${program}\` is not on PATH; install it, or name it by its path in command.run (experiment_config.yaml)`;
}

/** The shell's exit 127: a program the command runs is not installed (or not on PATH). */
export class ProgramNotFound extends InfraFailure {
  constructor(
    /** Its name, in the shell's own words; null where stderr stays private (a test run) or names none. */
    readonly program: string | null,
    message: string,
  ) {
    super("command exited 127", message);
  }
}

/** The program a shell (dash, bash, busybox) or a `#!/usr/bin/env` line could not find, from its stderr. */
export function missingProgram(stderr: string): string | null {
  const shell = /(?:^|: )([^\s:'"]+): (?:command )?not found\s*$/m.exec(stderr);
  const env = /env: '?([^\s:']+)'?: No such file or directory/.exec(stderr);
  return shell?.[1] ?? env?.[1] ?? null;
}

/** The last lines of a command's stderr, secrets removed, short enough for one error message. */
function tailOf(stderr: string, maxChars = 800): string {
  const text = redact(stderr).trimEnd();
  if (text === "") return "";
  const tail = text.length > maxChars ? `…${text.slice(-maxChars)}` : text;
  return tail
    .split("\n")
    .map((l) => `  | ${l}`)
    .join("\n");
}

interface ShellResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
  timedOut: boolean;
}

function runShell(
  command: string,
  o: {
    cwd: string;
    env: NodeJS.ProcessEnv;
    timeoutMs: number;
    signal?: AbortSignal;
    sandboxArgs?: string[];
    user?: SandboxUser | null;
    groups?: ProcessGroupTracker;
  },
): Promise<ShellResult> {
  return new Promise((resolvePromise, reject) => {
    // Its own process group, led by a keeper that kills the group when the daemon dies (group-keeper.ts), so a
    // timeout, an abort or the daemon's death takes the whole tree the shell started. stdin is the keeper's lifeline.
    const options: SpawnOptions = { cwd: o.cwd, env: o.env, stdio: ["pipe", "ignore", "pipe"], detached: true };
    const sealed = o.sandboxArgs ? sealedCommandLine(o.user ?? null, o.sandboxArgs) : null;
    const [file, args] = sealed ? [sealed.file, sealed.args] : ["/bin/sh", ["-c", command]];
    const child = spawn(process.execPath, keeperArgs(file, args), options);
    // The lifeline is never written to; a keeper that ended first must not surface as an EPIPE.
    child.stdin?.on("error", () => {});
    const untrack = child.pid ? o.groups?.track(child.pid, `benchmark command: ${command.slice(0, 200)}`) : undefined;
    let stderrTail = "";
    let timedOut = false;
    const killTree = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killTree();
    }, o.timeoutMs);
    const onAbort = () => killTree();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    child.stderr?.on("data", (c: Buffer) => {
      stderrTail = (stderrTail + c.toString("utf8")).slice(-2000);
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      untrack?.();
      reject(new InfraFailure("command did not start", `cannot start the benchmark command: ${error.message}`));
    });
    // The command is over when its keeper exits: what it left running in its group goes now, or a background
    // child still holding stderr would keep the pipe, and the harness, waiting.
    child.on("exit", () => killTree());
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      killTree();
      untrack?.();
      o.signal?.removeEventListener("abort", onAbort);
      resolvePromise({ code, signal, stderrTail, timedOut });
    });
  });
}
