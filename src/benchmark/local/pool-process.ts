/**
 * An agent process as the pool sees it: the tasks it holds, whether its agent loaded, its heartbeat, and
 * the tail of its stderr. Its messages have passed the channel's checks (sealed/agent-process.ts).
 */
import { HarnessError } from "../../errors.ts";
import { outsideText, placeAgent } from "../sealed/agent-build.ts";
import type { AgentProcess } from "../sealed/agent-process.ts";
import type { ChannelError } from "../sealed/channel.ts";
import type { FromChild, ToChild } from "../sealed/protocol.ts";
import type { LocalExecutorOptions } from "./executor.ts";
import type { Running } from "./task.ts";

const STDERR_CHARS = 4000;
/** Messages for no task in flight (a late reply, a cancelled call) that a working agent may send. */
const STRAYS_ALLOWED = 1000;
/** Heartbeats beyond their pace, however fast the harness reads them. */
const EXTRA_HEARTBEATS_ALLOWED = 50;

export interface PoolProcessEvents {
  message(p: PoolProcess, m: FromChild): void;
  exit(p: PoolProcess, code: number | null, signal: NodeJS.Signals | null): void;
  /** The channel broke after the agent loaded (before, the load fails). */
  broken(p: PoolProcess, error: ChannelError): void;
}

export class PoolProcess {
  readonly running = new Map<string, Running>();
  /** Model calls in flight: callId → jobId. */
  readonly calls = new Map<string, string>();
  readonly ready: Promise<void>;
  lastHeartbeat: number;
  killed = false;
  exited = false;
  loaded = false;
  stderrTail = "";
  private heartbeats = 0;
  private strays = 0;
  private readonly startedAt: number;

  constructor(
    readonly proc: AgentProcess,
    readonly capacity: number,
    private readonly agentFile: string,
    content: Buffer,
    o: LocalExecutorOptions,
    events: PoolProcessEvents,
  ) {
    this.lastHeartbeat = o.clock.monotonic();
    this.startedAt = o.clock.monotonic();
    const child = proc.child;
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_CHARS);
    });
    let failLoad: (error: Error) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      failLoad = reject;
      proc.onMessage((m) => {
        if (m.type === "ready") {
          this.loaded = true;
          resolve();
        } else if (m.type === "load-failed") reject(new HarnessError("AGENT_LOAD_FAILED", this.outside(m.message)));
        else events.message(this, m);
      });
      proc.onBroken((error) => {
        if (!this.loaded) reject(new HarnessError("AGENT_LOAD_FAILED", `${error.message} while its agent loaded`));
        else events.broken(this, error);
      });
      child.on("exit", (code, signal) => {
        this.exited = true;
        // Its directory and cgroup go with it, whoever is to blame.
        proc.dispose();
        // Before any task: nothing in stderr can be a task's content.
        const tail = this.stderrTail ? `: ${this.outside(this.stderrTail.slice(-1500))}` : "";
        reject(
          new HarnessError(
            "AGENT_LOAD_FAILED",
            `the agent process exited before the agent loaded (code ${code}, signal ${signal})${tail}`,
          ),
        );
        events.exit(this, code, signal);
      });
    });
    this.ready.catch(() => {});
    placeAgent(proc, agentFile, content).then(
      (placed) => {
        // The pool fails the whole run on this, and closes the process with it.
        if (!placed.ok) return failLoad(new HarnessError("AGENT_LOAD_FAILED", this.outside(placed.message)));
        this.send({
          type: "init",
          agentFile: placed.inside,
          model: o.model,
          maxRetries: o.maxRetries,
          heartbeatMs: o.heartbeatMs,
        });
      },
      () => this.kill(),
    );
  }

  /**
   * Whether a message nobody asked for makes a flood: heartbeats faster than the runtime sends them, or
   * messages for tasks and calls not in flight past an allowance. Counted, not timed by arrival, so a flood
   * is one however slowly a loaded harness reads it.
   */
  flooded(kind: "heartbeat" | "stray", now: number, heartbeatMs: number): boolean {
    if (kind === "stray") return ++this.strays > STRAYS_ALLOWED;
    const paced = (2 * (now - this.startedAt)) / Math.max(1, heartbeatMs);
    return ++this.heartbeats > paced + EXTRA_HEARTBEATS_ALLOWED;
  }

  /** Messages name the agent by its path inside the sandbox; the operator knows it by its own. */
  outside(text: string): string {
    return outsideText(this.proc, this.agentFile, text);
  }

  /** False when the message is too large for the channel (the harness's side: a task or a result too big). */
  send(message: ToChild): boolean {
    if (this.exited) return true;
    try {
      this.proc.send(message);
      return true;
    } catch {
      return false;
    }
  }

  kill(): void {
    this.killed = true;
    this.proc.dispose();
  }

  get room(): number {
    return this.exited || this.killed ? 0 : this.capacity - this.running.size;
  }
}
