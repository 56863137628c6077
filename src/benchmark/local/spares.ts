/**
 * One fresh agent process per (sandbox, language), shared by every runner of this harness process: it has
 * never run an agent, so handing it to a batch gives that batch nothing of another's, and the batch does
 * not wait for node and the runtime to load.
 */
import type { Clock } from "../../clock.ts";
import { type AgentProcess, startAgentProcess } from "../sealed/agent-process.ts";
import type { AgentLanguage, SandboxSpec } from "../sealed/sandbox.ts";

const spares = new Map<string, AgentProcess>();
let sparesCleanedAtExit = false;

const keyOf = (spec: SandboxSpec, language: AgentLanguage) => `${JSON.stringify(spec)}:${language}`;

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

/** A fresh agent process: the spare when one is ready, else a new one. */
export function takeAgentProcess(spec: SandboxSpec, language: AgentLanguage, clock?: Clock): AgentProcess {
  const key = keyOf(spec, language);
  const spare = spares.get(key);
  spares.delete(key);
  if (spare?.alive()) {
    spare.hold(true);
    return spare;
  }
  spare?.dispose();
  return startAgentProcess(spec, language, clock);
}

/** Starts the spare for the next batch, so it does not wait for node and the runtime. */
export function keepSpareAgentProcess(spec: SandboxSpec, language: AgentLanguage, clock?: Clock): void {
  const key = keyOf(spec, language);
  if (shuttingDown || spares.get(key)?.alive()) return;
  let spare: AgentProcess;
  try {
    spare = startAgentProcess(spec, language, clock);
  } catch {
    return;
  }
  // A spare never keeps the harness alive; it dies with it.
  spare.hold(false);
  spare.child.stderr?.resume();
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
