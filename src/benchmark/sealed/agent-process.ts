/**
 * One agent process: started as sandbox.ts says, with one channel to the harness on its fd 3 (channel.ts)
 * and no other descriptor of the harness's. Node marks the descriptors it opens close-on-exec, but one a
 * launcher left open (pm2's, a shell's `exec 5<file`) would reach the sandbox: each is replaced by /dev/null
 * in the agent process before it runs anything.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { type Clock, systemClock } from "../../clock.ts";
import { CHANNEL_FD, ChannelError, encodeFrame, FrameDecoder } from "./channel.ts";
import { createAgentCgroup, removeAgentCgroup } from "./limits.ts";
import { type FromChild, fromChildSchema, type ToChild } from "./protocol.ts";
import { childScriptPath, newAgentDir, pythonRuntimePath } from "./runtime-dir.ts";
import {
  AGENT_DIR_INSIDE,
  type AgentLanguage,
  agentEnvironment,
  launchCommand,
  runtimeCommand,
  type SandboxMode,
  type SandboxSpec,
  specOf,
} from "./sandbox.ts";

export interface AgentProcess {
  child: ChildProcess;
  /** Host directory the agent file is placed in (read-only inside the sandbox). */
  agentDir: string;
  /** The path the runtime must load for a file named `name` in agentDir. */
  insidePath(name: string): string;
  /** Sends one message; a process that stopped reading its channel is broken. */
  send(message: ToChild): void;
  /** Each message the process sends that parses and passes the schema (the last handler set gets them). */
  onMessage(handler: (m: FromChild) => void): void;
  /** The channel broke: the process is killed, then the handler hears why. */
  onBroken(handler: (error: ChannelError) => void): void;
  alive(): boolean;
  /** Whether the process keeps the harness's event loop alive (a spare does not). */
  hold(keep: boolean): void;
  /** Kills the process (and with bwrap everything it started) and removes its directory and cgroup. */
  dispose(): void;
}

/** More frames than this in one second is a flood, not an agent at work (a busy tool loop sends a few thousand). */
const FLOOD_FRAMES_PER_SECOND = 50_000;
/** Replies the agent process leaves unread past this are a channel it does not read. */
const MAX_UNREAD_BYTES = 128 * 1024 * 1024;
const O_CLOEXEC = 0o2000000;

/** Descriptors this process holds without close-on-exec (a launcher's), which a child would inherit. */
export function inheritedDescriptors(): number[] {
  const fds: number[] = [];
  for (const name of readdirSync("/proc/self/fd")) {
    const fd = Number(name);
    if (fd <= 2) continue;
    try {
      const flags = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1];
      if (flags !== undefined && (Number.parseInt(flags, 8) & O_CLOEXEC) === 0) fds.push(fd);
    } catch {
      // readdir's own descriptor, closed by now
    }
  }
  return fds;
}

let devNull: number | null = null;

/** stdin and stdout /dev/null, stderr and the channel pipes, and /dev/null over every inherited descriptor. */
function stdioFor(inherited: number[]): ("ignore" | "pipe" | number)[] {
  const stdio: ("ignore" | "pipe" | number)[] = ["ignore", "ignore", "pipe", "pipe"];
  for (const fd of inherited) {
    if (fd <= CHANNEL_FD) continue;
    devNull ??= openSync("/dev/null", "r");
    while (stdio.length < fd) stdio.push("ignore");
    stdio[fd] = devNull;
  }
  return stdio;
}

/**
 * Starts a fresh agent process. It loads its runtime, then waits for `init`: a process may be started
 * before its agent file is known (a warm spare), since agentDir is bound, not copied.
 */
export function startAgentProcess(
  sandbox: SandboxMode | SandboxSpec,
  language: AgentLanguage = "ts",
  clock: Clock = systemClock,
): AgentProcess {
  const spec = specOf(sandbox);
  const sealed = spec.mode === "bwrap";
  const runtime = language === "python" ? pythonRuntimePath() : childScriptPath();
  const agentDir = newAgentDir(sealed && spec.user ? spec.user.gid : null);
  const cgroup = sealed ? createAgentCgroup(spec.limits) : null;
  const { file, args } = launchCommand(spec, runtimeCommand(spec, language, runtime), { agentDir, runtime, cgroup });
  // No key and no tokens even unsealed: the agent needs none of the harness's environment.
  const child = spawn(file, args, {
    env: sealed ? {} : agentEnvironment(spec),
    stdio: stdioFor(inheritedDescriptors()),
    cwd: sealed ? "/" : agentDir,
  });
  // An unexpected end of the channel is reported through "exit"; the write error itself is noise.
  child.on("error", () => {});
  const socket = child.stdio[CHANNEL_FD] as Socket;
  socket.on("error", () => {});
  const decoder = new FrameDecoder();
  let onMessage: (m: FromChild) => void = () => {};
  let onBroken: (e: ChannelError) => void = () => {};
  let broken = false;
  let disposed = false;
  let windowStart = clock.monotonic();
  let frames = 0;

  const alive = () => !broken && !disposed && child.exitCode === null && child.signalCode === null;
  const dispose = () => {
    if (disposed) return;
    disposed = true;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    socket.destroy();
    rmSync(agentDir, { recursive: true, force: true });
    if (!cgroup) return;
    if (child.exitCode !== null || child.signalCode !== null) removeAgentCgroup(cgroup);
    else child.once("exit", () => removeAgentCgroup(cgroup));
  };
  const breakWith = (error: ChannelError) => {
    if (broken || disposed) return;
    broken = true;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    onBroken(error);
  };
  const deliver = (raw: unknown): void => {
    if (++frames > FLOOD_FRAMES_PER_SECOND) {
      if (clock.monotonic() - windowStart < 1000) {
        breakWith(new ChannelError("flood"));
        return;
      }
      windowStart = clock.monotonic();
      frames = 0;
    }
    const parsed = fromChildSchema.safeParse(raw);
    if (parsed.success) onMessage(parsed.data);
    else breakWith(new ChannelError("not the protocol"));
  };
  socket.on("data", (chunk: Buffer) => {
    if (broken || disposed) return;
    let messages: unknown[];
    try {
      messages = decoder.push(chunk);
    } catch (error) {
      return breakWith(error instanceof ChannelError ? error : new ChannelError("not JSON"));
    }
    for (const raw of messages) {
      if (broken) return;
      deliver(raw);
    }
  });
  socket.on("end", () => {
    if (!decoder.idle) breakWith(new ChannelError("torn frame"));
  });
  return {
    child,
    agentDir,
    insidePath: (name) => (sealed ? `${AGENT_DIR_INSIDE}/${name}` : join(agentDir, name)),
    send: (message) => {
      if (!alive() || socket.destroyed) return;
      if (socket.writableLength > MAX_UNREAD_BYTES) return breakWith(new ChannelError("not read"));
      socket.write(encodeFrame(message));
    },
    onMessage: (handler) => {
      onMessage = handler;
    },
    onBroken: (handler) => {
      onBroken = handler;
    },
    alive,
    hold: (keep) => {
      for (const handle of [child, socket, child.stderr] as { ref?: () => void; unref?: () => void }[]) {
        if (keep) handle?.ref?.();
        else handle?.unref?.();
      }
    },
    dispose,
  };
}
